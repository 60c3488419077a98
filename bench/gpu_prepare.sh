#!/bin/bash
# gpu_prepare.sh: run here, before handing bench/gpu_check.sh to a GPU machine that has CUDA and
# PyTorch but maybe not this project's Debian packages (libjpeg, libpng) or Fashion-MNIST: builds,
# copies the shared libraries the binaries need into .devlibs/ and the dataset into .devdata/
# (both ignored by git), checks that the carry fits, and prints the device command to run.
# gpu_check.sh puts .devlibs on its binaries' library path and uses .devdata when it finds them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# Without MPI unless MPI=1: the GPU machine may have no Open MPI, and a binary linked to libmpi
# would not start there (the NCCL tests need no MPI; gpu_check.sh's DP=1 step does)
MPI_FLAG=()
[ "${MPI:-0}" = 1 ] || MPI_FLAG=(MPICC=)
if ! make -j"$(nproc)" "${MPI_FLAG[@]}" all >/tmp/gpu_prepare_build.log 2>&1; then
    tail -n 20 /tmp/gpu_prepare_build.log
    echo "gpu_prepare: build failed (all of it in /tmp/gpu_prepare_build.log)" >&2
    exit 1
fi
mkdir -p .devlibs .devdata
for lib in libjpeg.so.62 libpng16.so.16 libgomp.so.1; do
    path=$(ldd build/alexnet | awk -v l="$lib" '$1 == l { print $3 }')
    if [ -n "$path" ]; then cp -L "$path" .devlibs/; else echo "gpu_prepare: build/alexnet does not use $lib"; fi
done
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
if [ -d "$FMNIST" ]; then
    mkdir -p .devdata/fashion-mnist && cp "$FMNIST"/*.gz .devdata/fashion-mnist/
else
    echo "gpu_prepare: no Fashion-MNIST in $FMNIST (set FMNIST); E2E=1 will have no data"
fi
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for d in /.devlibs/ /.devdata/; do grep -qxF "$d" "$exclude" 2>/dev/null || echo "$d" >>"$exclude"; done

# the device tool carries at most 64 MiB in all
du -sh build .devlibs .devdata | sed 's/^/carry: /'
kib=$(du -sk build .devlibs .devdata | awk '{ s += $1 } END { print s }')
if [ "$kib" -gt $((60 * 1024)) ]; then
    echo "gpu_prepare: $((kib / 1024)) MiB is near or over the 64 MiB carry limit:" \
        "carry build/alexnet and build/test_all instead of build"
fi
cat <<'EOF'
device command (QUICK, the default; it stops itself within BUDGET=430 s):
  run(command="bench/gpu_check.sh", timeout_s=450, carry=["build", ".devlibs", ".devdata"])
the end-to-end Fashion-MNIST run alone (10 epochs, at most E2E_TIMEOUT=300 s):
  run(command="E2E=1 SECTIONS= bench/gpu_check.sh", timeout_s=450, carry=["build", ".devlibs", ".devdata"])
FULL=1 is about twice a command: split it, e.g. FULL=1 SECTIONS=speed MODELS=alexnet BUDGET=580
with timeout_s=600, then MODELS=alexnet-owt. Results: summary.txt, speed.md, floors.md in $OUT.
EOF
