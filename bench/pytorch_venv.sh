#!/bin/bash
# pytorch_venv.sh: makes the PyTorch that bench/speed.sh compares against, as a user gets it with
# pip: the current torch + torchvision CPU wheels (built with MKL and oneDNN) in a virtual
# environment at runs/pytorch-venv (git-ignored), not Debian's python3-torch 1.13 (generic BLAS).
# Run it once; running it again only prints what is there (it installs only what is missing).
#
#   bench/pytorch_venv.sh
# Environment: VENV (default runs/pytorch-venv), BASE_PYTHON (the python that makes the venv;
# default /usr/bin/python3 where it exists, else python3). Needs network access the first time.
# The wheels come from https://download.pytorch.org/whl/cpu; where that index cannot be reached,
# from plain PyPI (whose Linux torch wheel also pulls in the CUDA libraries, several GB).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/runs/pytorch-venv}
if [ -z "${BASE_PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then BASE_PYTHON=/usr/bin/python3; else BASE_PYTHON=python3; fi
fi
INDEX=https://download.pytorch.org/whl/cpu

if [ ! -x "$VENV/bin/python" ]; then
    echo "pytorch_venv.sh: creating $VENV with $BASE_PYTHON -m venv"
    mkdir -p "$(dirname "$VENV")"
    if ! "$BASE_PYTHON" -m venv "$VENV"; then
        ver=$("$BASE_PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")' 2>/dev/null || echo 3)
        rm -rf "$VENV"
        echo "pytorch_venv.sh: '$BASE_PYTHON -m venv' failed: on Debian install the venv module with" >&2
        echo "    apt-get install python3-venv      (python$ver-venv for this python)" >&2
        exit 1
    fi
fi
PY=$VENV/bin/python

if ! "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    if "$PY" -c "import urllib.request as u; u.urlopen('$INDEX/torch/', timeout=20)" 2>/dev/null; then
        echo "pytorch_venv.sh: pip install torch torchvision --index-url $INDEX"
        "$PY" -m pip install torch torchvision --index-url "$INDEX"
    else
        echo "pytorch_venv.sh: $INDEX unreachable; installing torch torchvision from PyPI"
        "$PY" -m pip install torch torchvision
    fi
fi

echo "python: $PY"
"$PY" "$ROOT/bench/speed_pytorch.py" --info
