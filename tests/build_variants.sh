#!/usr/bin/env bash
# tests/build_variants.sh: a CPU-only build and a CUDA build made one after the other in the same
# BUILD folder must not share objects or archives: after the CUDA build, the library holds no
# cuda_stub.o and the program's --device cuda no longer says it was built without nvcc; switching
# back gives the stub again; a build without MPI (MPICC=) answers --parallel with one line saying it
# needs an MPI build. Needs nvcc (skipped without it). Prints "N passed, N failed, K skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE="${MAKE:-make}"
dir="$(mktemp -d /tmp/alexnet-variants-XXXXXX)"
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok    $1"; else fail=$((fail + 1)); echo "FAIL  $1"; fi; }
nvcc_path="$(command -v nvcc || { test -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" && echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"; })"
if [ -z "$nvcc_path" ]; then
    echo "build_variants: skipped: no nvcc on this machine"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
says_no_cuda() { local out; out="$("$dir/alexnet" train --device cuda --model convnet4 --data /nonexistent 2>&1)"; [[ "$out" == *"no CUDA support"* ]]; }
$MAKE -s -j"$(nproc)" NVCC= BUILD="$dir" "$dir/alexnet" >/dev/null || { echo "FAIL  CPU-only build"; exit 1; }
check "CPU-only build answers --device cuda with 'no CUDA support'" says_no_cuda
$MAKE -s -j"$(nproc)" BUILD="$dir" "$dir/alexnet" >/dev/null || { echo "FAIL  CUDA build"; exit 1; }
check "CUDA build after a CPU-only build in the same folder: no cuda_stub.o in its library" \
    '! ar t "$dir"/cuda*/libalexnet.a | grep -q cuda_stub.o'
check "CUDA build after a CPU-only build: --device cuda is not the stub's answer" '! says_no_cuda'
$MAKE -s -j"$(nproc)" NVCC= BUILD="$dir" "$dir/alexnet" >/dev/null || { echo "FAIL  CPU-only rebuild"; exit 1; }
check "back to CPU-only in the same folder: the stub again" says_no_cuda
says_no_mpi() {
    local out; out="$("$dir/alexnet" train --parallel data --model convnet4 --data /nonexistent 2>&1)"
    [[ "$out" == "alexnet: --parallel needs an MPI build"* && $(printf '%s\n' "$out" | wc -l) -eq 1 ]]
}
$MAKE -s -j"$(nproc)" NVCC= MPICC= BUILD="$dir" "$dir/alexnet" >/dev/null || { echo "FAIL  build without MPI"; exit 1; }
check "a build without MPI answers --parallel with one line: it needs an MPI build" says_no_mpi
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
