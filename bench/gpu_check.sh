#!/bin/bash
# gpu_check.sh: the prepared run for a machine with an NVIDIA GPU (written for the H100/H200 that
# the device tool lends): build, the GPU tests (make test-cuda), our training step and inference
# beside PyTorch's on the same card (bench/speed_gpu_pytorch.py: same model, batch, precision),
# the card's measured matrix and copy rates, each layer's time beside its floor, and optionally
# the end-to-end Fashion-MNIST run. Everything also lands under $OUT (default /tmp/gpu_check):
# build.log, tests.log, speed.md (the table), rates.txt, layers-*.txt, floors.md, e2e.log.
#
#   bench/gpu_check.sh            QUICK=1: batch-128 training rows only; E2E=1: also `alexnet` on
#                                 Fashion-MNIST (resized to 227) for E2E_EPOCHS (default 10) epochs
#                                 from FMNIST (default /usr/share/datasets/fashion-mnist)
# Prepare with bench/gpu_prepare.sh on the build machine (carry build, .devlibs, .devdata).
# cuDNN and cuBLAS are loaded at run time: where only PyTorch's pip packages carry them, their lib
# folders are put on LD_LIBRARY_PATH (and cuDNN's include folder on the compiler's path).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/gpu_check}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
say() { echo "== $*" | tee -a "$OUT/summary.txt"; }

for pkg in cudnn cublas; do
    d=$("$PYTHON" -c "import nvidia.$pkg as m, os; print(list(m.__path__)[0])" 2>/dev/null) || continue
    export LD_LIBRARY_PATH="$d/lib:${LD_LIBRARY_PATH:-}"
    [ -d "$d/include" ] && export CPATH="$d/include:${CPATH:-}"
done
[ -d /usr/local/cuda/lib64 ] && export LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# carried by bench/gpu_prepare.sh: libjpeg/libpng/libgomp for a carried build, and the dataset
[ -d .devlibs ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$ROOT/.devlibs"
[ -d .devdata/fashion-mnist ] && export FMNIST=${FMNIST:-$ROOT/.devdata/fashion-mnist}
export ALEXNET_FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
say "$(date -u '+%Y-%m-%d %H:%M UTC') $(nvidia-smi -L 2>&1 | head -n 1)"

# build here, or use a carried build/ when this machine lacks the JPEG/PNG headers
if make -j"$(nproc)" NVFLAGS_EXTRA="${CPATH:+-I${CPATH//:/ -I}}" all >"$OUT/build.log" 2>&1; then
    say "built here"
elif [ -x build/alexnet ]; then
    say "build failed here (see build.log); using the carried build/"
else
    say "build failed and no build/ was carried"; tail -n 20 "$OUT/build.log"; exit 1
fi
ALEXNET=build/alexnet

say "GPU tests"
ALEXNET_BIN=$ALEXNET ./build/test_all cuda_ 2>&1 | tee "$OUT/tests.log" | tail -n 12

say "card rates"
"$PYTHON" bench/gpu_rates.py | tee "$OUT/rates.txt"

rate() { sed -n 's/^images\/s: //p' "$1" | tail -n 1; }
if [ "${QUICK:-0}" = 1 ]; then configs="train:128"; else configs="train:128 train:512 infer:128 infer:1024"; fi
{
    echo "| model | mode | batch | precision | ours img/s | PyTorch img/s | PyTorch channels-last | ratio |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$OUT/speed.md"
for model in alexnet alexnet-owt; do
    for cfg in $configs; do
        mode=${cfg%:*} batch=${cfg#*:}
        for prec in fp32 tf32 bf16; do
            tag="$model-$mode-$batch-$prec"
            $ALEXNET bench --device cuda --model "$model" --mode "$mode" --batch "$batch" --precision "$prec" \
                --steps 20 --warmup 5 >"$OUT/c-$tag.txt" 2>&1
            "$PYTHON" bench/speed_gpu_pytorch.py --model "$model" --mode "$mode" --batch "$batch" \
                --precision "$prec" >"$OUT/p-$tag.txt" 2>&1
            "$PYTHON" bench/speed_gpu_pytorch.py --model "$model" --mode "$mode" --batch "$batch" \
                --precision "$prec" --channels-last >"$OUT/pcl-$tag.txt" 2>&1
            c=$(rate "$OUT/c-$tag.txt" 2>/dev/null); p=$(rate "$OUT/p-$tag.txt"); pcl=$(rate "$OUT/pcl-$tag.txt")
            best=$(printf '%s\n%s\n' "${p:-0}" "${pcl:-0}" | sort -g | tail -n 1)
            ratio=$(awk -v c="${c:-0}" -v b="$best" 'BEGIN { if (c > 0 && b > 0) printf "%.2fx", c / b; else print "-" }')
            echo "| $model | $mode | $batch | $prec | ${c:--} | ${p:--} | ${pcl:--} | $ratio |" | tee -a "$OUT/speed.md"
        done
    done
done
say "ratios: ours / the faster PyTorch layout (NCHW or channels-last) at the same precision"

say "per layer (alexnet, train, batch 128)"
for prec in fp32 tf32 bf16; do
    $ALEXNET bench --device cuda --model alexnet --mode train --batch 128 --precision "$prec" --steps 10 --warmup 3 \
        --layers >"$OUT/layers-$prec.txt" 2>&1
    "$PYTHON" bench/gpu_floor.py "$OUT/rates.txt" "$OUT/layers-$prec.txt" "$prec" | tee -a "$OUT/floors.md"
done

if [ "${E2E:-0}" = 1 ]; then
    say "end to end: alexnet on Fashion-MNIST, ${E2E_EPOCHS:-10} epochs on the GPU"
    /usr/bin/time -v $ALEXNET train --device cuda --model alexnet --data "${FMNIST:-/usr/share/datasets/fashion-mnist}" \
        --epochs "${E2E_EPOCHS:-10}" --out "$OUT/e2e" >"$OUT/e2e.log" 2>&1
    grep -E "^epoch [0-9]+:|^done|Elapsed" "$OUT/e2e.log" | tee -a "$OUT/summary.txt"
fi
say "done"
