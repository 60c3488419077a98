#!/bin/bash
# gpu_prepare.sh: run here, before handing bench/gpu_check.sh to a GPU machine that has CUDA and
# PyTorch but maybe not this project's Debian packages (libjpeg, libpng) or Fashion-MNIST: builds,
# copies the shared libraries the binaries need into .devlibs/ and the dataset into .devdata/
# (both ignored by git), and prints what to carry. gpu_check.sh uses them when it finds them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
make -j"$(nproc)" all >/dev/null
mkdir -p .devlibs .devdata
for lib in libjpeg.so.62 libpng16.so.16 libgomp.so.1; do
    path=$(ldd build/alexnet | awk -v l="$lib" '$1 == l { print $3 }')
    [ -n "$path" ] && cp -L "$path" .devlibs/
done
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
[ -d "$FMNIST" ] && mkdir -p .devdata/fashion-mnist && cp "$FMNIST"/*.gz .devdata/fashion-mnist/
for d in /.devlibs/ /.devdata/; do grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >>.git/info/exclude; done
du -sh build .devlibs .devdata | sed 's/^/carry: /'
echo "then: command 'OUT=\$OUT bench/gpu_check.sh' (E2E=1 for the Fashion-MNIST run), carry [build, .devlibs, .devdata]"
