#!/bin/bash
# gpu_check.sh: the prepared run for a machine with an NVIDIA GPU (written for the H100/H200 that
# the device tool lends): build, the GPU tests, our training step and inference beside PyTorch's on
# the same card (bench/speed_gpu_pytorch.py: same model, batch, precision), the card's measured
# matrix and copy rates, each layer's time beside its floor, and optionally the end-to-end
# Fashion-MNIST run and a one-rank data-parallel run beside a plain one. Everything lands under
# $OUT (default /tmp/gpu_check): summary.txt (with the seconds of each section), build.log,
# tests.log, nccl.log, speed.md, rates.txt, layers-*.txt, floors.md, e2e.log, e2e-log.csv,
# dp-*.log.
#
# Made for one device command: run it with the device tool's timeout_s about 450 (the default,
# QUICK). Every step has its own time limit, and all of them together stay within BUDGET seconds
# (default 430), so a hang costs at most its step and the summary is still written.
#
#   bench/gpu_check.sh          QUICK (default): batch-128 training rows, per-layer floors
#   FULL=1                      also batch 512 training and batch 128/1024 inference (about twice
#                               a command's time: split it with MODELS or CONFIGS, timeout_s 600,
#                               BUDGET=580)
#   E2E=1                       also `alexnet train` on Fashion-MNIST (resized to 227) for E2E_EPOCHS
#                               (default 10) epochs, at most E2E_TIMEOUT (default 300) s, from FMNIST
#                               (default .devdata/fashion-mnist or /usr/share/datasets/fashion-mnist);
#                               alone in a command: E2E=1 SECTIONS= bench/gpu_check.sh
#   DP=1                        also `alexnet train --parallel data` under `mpirun -np 1` beside the
#                               same run without it (convnet4, Fashion-MNIST, --max-steps 3 --seed 1):
#                               the checkpoints' tensors must be the same, bit for bit (a one-rank
#                               all-reduce is a copy)
#   SECTIONS="tests nccl rates speed layers"   the default sections (the build always runs); nccl:
#                               the data-parallel tests (test_all --no-skip cuda_nccl_: NCCL must load)
#   MODELS="alexnet alexnet-owt"  CONFIGS="train:128 ..."  PRECISIONS="fp32 tf32 bf16"
#
# Prepare with bench/gpu_prepare.sh on the build machine (carry build, .devlibs, .devdata).
# cuDNN and cuBLAS are loaded at run time: PyTorch's pip wheels carry them (nvidia/cu13/lib for
# CUDA 13, nvidia/cudnn/lib and nvidia/cublas/lib before). Those folders go on the library path of
# our binaries only (OUR_LD); Python runs with the environment it was given, so that nothing
# shadows PyTorch's own CUDA libraries. cudnn.h from the wheels goes on CPATH for the compilers.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${OUT:-/tmp/gpu_check}
PYTHON=${PYTHON:-python3}
BUDGET=${BUDGET:-430}
mkdir -p "$OUT"
: >"$OUT/summary.txt"
say() { echo "== $*" | tee -a "$OUT/summary.txt"; }

# section NAME [WHAT]: close the previous section (its seconds into the summary), then open NAME
SEC_NAME="" SEC_T=0
section() {
    [ -n "$SEC_NAME" ] && say "$SEC_NAME: $((SECONDS - SEC_T)) s ($SECONDS s in all)"
    SEC_NAME=$1 SEC_T=$SECONDS
    [ -n "$1" ] && say "$1${2:+: $2}"
}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }

spent() { ((BUDGET - SECONDS < 5)); }
# limited T CMD...: CMD within T seconds and what is left of BUDGET (then SIGKILL 10 s later);
# 124 or 137: timed out, 125: not started (budget spent)
limited() {
    local t=$1 left=$((BUDGET - SECONDS))
    shift
    ((left < t)) && t=$left
    spent && return 125
    timeout -k 10 "$t" "$@"
}
# ours T CMD...: one of our binaries, with OUR_LD as its library path
ours() {
    local t=$1
    shift
    limited "$t" env LD_LIBRARY_PATH="$OUR_LD" "$@"
}
# report WHAT RC: a line in the summary unless RC is 0
report() {
    case $2 in
    0) ;;
    124 | 137) say "$1: timed out" ;;
    125) say "$1: skipped, BUDGET ($BUDGET s) spent" ;;
    *) say "$1: failed (exit $2)" ;;
    esac
}

# pip's NVIDIA wheels: every <nvidia path>/*/lib to OUR_LD (cu13/lib, cudnn/lib, cublas/lib, ...),
# and cudnn/include or cu13/include to CPATH where it holds cudnn.h
PIP_LD=""
while IFS= read -r p; do
    for d in "$p"/*/lib; do
        [ -d "$d" ] && PIP_LD="$PIP_LD${PIP_LD:+:}$d"
    done
    for d in "$p/cudnn/include" "$p/cu13/include"; do
        [ -f "$d/cudnn.h" ] && export CPATH="$d${CPATH:+:$CPATH}"
    done
done < <("$PYTHON" -c "import nvidia; print('\n'.join(nvidia.__path__))" 2>/dev/null)
# OUR_LD: the wheels, then the toolkit, then what the environment had, then .devlibs (carried by
# bench/gpu_prepare.sh: libjpeg/libpng/libgomp for a carried build)
OUR_LD=$PIP_LD
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
[ -d "$CUDA_HOME/lib64" ] && OUR_LD="$OUR_LD${OUR_LD:+:}$CUDA_HOME/lib64"
[ -n "${LD_LIBRARY_PATH:-}" ] && OUR_LD="$OUR_LD${OUR_LD:+:}$LD_LIBRARY_PATH"
[ -d .devlibs ] && OUR_LD="$OUR_LD${OUR_LD:+:}$ROOT/.devlibs"
[ -d .devdata/fashion-mnist ] && FMNIST=${FMNIST:-$ROOT/.devdata/fashion-mnist}
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
export ALEXNET_FMNIST=$FMNIST

if [ "${FULL:-0}" = 1 ]; then CONFIGS=${CONFIGS:-train:128 train:512 infer:128 infer:1024}; fi
CONFIGS=${CONFIGS:-train:128}
MODELS=${MODELS:-alexnet alexnet-owt}
PRECISIONS=${PRECISIONS:-fp32 tf32 bf16}
SECTIONS=${SECTIONS-tests nccl rates speed layers}
[ "${E2E:-0}" = 1 ] && SECTIONS="$SECTIONS e2e"
[ "${DP:-0}" = 1 ] && SECTIONS="$SECTIONS dp"

section setup
say "$(date -u '+%Y-%m-%d %H:%M UTC') $(nvidia-smi -L 2>&1 | head -n 1)"
say "sections: ${SECTIONS:-none}; models: $MODELS; configs: $CONFIGS; budget $BUDGET s"
say "torch: $(limited 60 "$PYTHON" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>&1 | tail -n 1)"
NVCC=$(command -v nvcc || { [ -x "$CUDA_HOME/bin/nvcc" ] && echo "$CUDA_HOME/bin/nvcc"; })
say "nvcc: ${NVCC:-none} $([ -n "$NVCC" ] && "$NVCC" --version | tail -n 1)"
# cudnn.h as the compilers search: nvcc's toolkit include, CPATH, the system's
say "cudnn.h: $(for d in "$CUDA_HOME/include" ${CPATH:+${CPATH//:/ }} /usr/include /usr/include/x86_64-linux-gnu; do
    [ -f "$d/cudnn.h" ] && echo "$d"; done | head -n 1)"
say "our library path: $OUR_LD"
# the libraries our binaries will dlopen (libcudnn.so.N, libcublas.so.N, libnccl.so.N), first found
# first (NCCL may also come from the system's library folders)
found_libs() {
    local IFS=: d f
    for d in $OUR_LD; do
        for f in "$d"/libcudnn.so.[0-9]* "$d"/libcublas.so.[0-9]* "$d"/libnccl.so.[0-9]*; do
            [[ -e $f && ${f##*.so.} != *.* ]] && echo "$f"
        done
    done
}
say "cuDNN/cuBLAS/NCCL for our binaries: $(found_libs | tr '\n' ' ')"

# build here, or use a carried build/ when this machine lacks nvcc (a build without it would
# replace the carried GPU binaries with CPU-only ones) or the JPEG/PNG headers
section build
if [ -z "$NVCC" ] && [ -x build/alexnet ]; then
    say "no nvcc here; using the carried build/"
elif limited 240 make -j"$(nproc)" all >"$OUT/build.log" 2>&1; then
    say "built here"
elif [ -x build/alexnet ]; then
    say "build failed here (see build.log); using the carried build/"
else
    say "build failed and no build/ was carried"
    tail -n 20 "$OUT/build.log"
    section ""
    exit 1
fi
ALEXNET=build/alexnet

if want tests; then
    section tests "the GPU tests (test_all cuda_)"
    ALEXNET_BIN=$ALEXNET ours 240 ./build/test_all cuda_ >"$OUT/tests.log" 2>&1
    rc=$?
    tail -n 12 "$OUT/tests.log"
    report tests $rc
fi

if want nccl; then
    section nccl "data parallel through NCCL, one rank (test_all --no-skip cuda_nccl_)"
    ALEXNET_BIN=$ALEXNET ours 120 ./build/test_all --no-skip cuda_nccl_ >"$OUT/nccl.log" 2>&1
    rc=$?
    tail -n 6 "$OUT/nccl.log"
    report nccl $rc
    [ "$rc" = 0 ] && say "nccl: passed"
fi

if want rates || { want layers && [ ! -s "$OUT/rates.txt" ]; }; then
    section rates "the card's matrix and copy rates (gpu_rates.py)"
    limited 90 "$PYTHON" bench/gpu_rates.py >"$OUT/rates.txt" 2>"$OUT/rates.err"
    rc=$?
    report rates $rc
    [ "$rc" = 0 ] || tail -n 3 "$OUT/rates.err"
    cat "$OUT/rates.txt"
fi

rate() { sed -n 's/^images\/s: //p' "$1" 2>/dev/null | tail -n 1; }
if want speed; then
    section speed "ours beside PyTorch (speed.md)"
    {
        echo "| model | mode | batch | precision | ours img/s | PyTorch img/s | PyTorch channels-last | ratio |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    } >"$OUT/speed.md"
    for model in $MODELS; do
        for cfg in $CONFIGS; do
            mode=${cfg%:*} batch=${cfg#*:}
            for prec in $PRECISIONS; do
                spent && { say "speed: the rest skipped, BUDGET ($BUDGET s) spent"; break 3; }
                tag="$model-$mode-$batch-$prec"
                args=(--model "$model" --mode "$mode" --batch "$batch" --precision "$prec")
                ours 60 "$ALEXNET" bench --device cuda "${args[@]}" --steps 20 --warmup 5 >"$OUT/c-$tag.txt" 2>&1
                report "ours $tag" $?
                limited 60 "$PYTHON" bench/speed_gpu_pytorch.py "${args[@]}" >"$OUT/p-$tag.txt" 2>&1
                report "PyTorch $tag" $?
                limited 60 "$PYTHON" bench/speed_gpu_pytorch.py "${args[@]}" --channels-last >"$OUT/pcl-$tag.txt" 2>&1
                report "PyTorch channels-last $tag" $?
                c=$(rate "$OUT/c-$tag.txt") p=$(rate "$OUT/p-$tag.txt") pcl=$(rate "$OUT/pcl-$tag.txt")
                [ -z "$c" ] && [ -s "$OUT/c-$tag.txt" ] && say "ours $tag: $(tail -n 1 "$OUT/c-$tag.txt")"
                best=$(printf '%s\n%s\n' "${p:-0}" "${pcl:-0}" | sort -g | tail -n 1)
                ratio=$(awk -v c="${c:-0}" -v b="$best" 'BEGIN { if (c > 0 && b > 0) printf "%.2fx", c / b; else print "-" }')
                echo "| $model | $mode | $batch | $prec | ${c:--} | ${p:--} | ${pcl:--} | $ratio |" | tee -a "$OUT/speed.md"
            done
        done
    done
    say "ratios: ours / the faster PyTorch layout (NCHW or channels-last) at the same precision"
fi

if want layers; then
    section layers "alexnet, train, batch 128, each layer beside its floor (floors.md)"
    : >"$OUT/floors.md"
    for prec in $PRECISIONS; do
        spent && { say "layers: the rest skipped, BUDGET ($BUDGET s) spent"; break; }
        ours 60 "$ALEXNET" bench --device cuda --model alexnet --mode train --batch 128 --precision "$prec" \
            --steps 10 --warmup 3 --layers >"$OUT/layers-$prec.txt" 2>&1
        report "layers $prec" $?
        limited 30 "$PYTHON" bench/gpu_floor.py "$OUT/rates.txt" "$OUT/layers-$prec.txt" "$prec" | tee -a "$OUT/floors.md"
    done
fi

if want e2e; then
    section e2e "alexnet on Fashion-MNIST ($FMNIST), ${E2E_EPOCHS:-10} epochs on the GPU"
    # checkpoints (~460 MB) stay in /tmp/e2e; only the log and log.csv come back in $OUT
    rm -rf /tmp/e2e
    timev=()
    [ -x /usr/bin/time ] && timev=(/usr/bin/time -v)
    t0=$SECONDS
    ours "${E2E_TIMEOUT:-300}" ${timev[@]+"${timev[@]}"} "$ALEXNET" train --device cuda --model alexnet \
        --data "$FMNIST" --epochs "${E2E_EPOCHS:-10}" --out /tmp/e2e >"$OUT/e2e.log" 2>&1
    rc=$?
    echo "wall seconds: $((SECONDS - t0))" >>"$OUT/e2e.log"
    report e2e $rc
    [ -f /tmp/e2e/log.csv ] && cp /tmp/e2e/log.csv "$OUT/e2e-log.csv"
    grep -E "^epoch [0-9]+:|^done|Elapsed|Maximum resident|^wall seconds" "$OUT/e2e.log" | tee -a "$OUT/summary.txt"
fi

if want dp; then
    section dp "one-rank --parallel data beside plain training (convnet4, $FMNIST, 3 steps, seed 1)"
    # both runs' checkpoints stay in /tmp/dp-*; their comparison goes into the summary
    rm -rf /tmp/dp-plain /tmp/dp-data
    args=(train --model convnet4 --data "$FMNIST" --device cuda --max-steps 3 --seed 1)
    ours 120 "$ALEXNET" "${args[@]}" --out /tmp/dp-plain >"$OUT/dp-plain.log" 2>&1
    report "dp: plain run" $?
    if ! command -v mpirun >/dev/null; then
        say "dp: no mpirun here"
    else
        asroot=()
        [ "$(id -u)" = 0 ] && asroot=(--allow-run-as-root)
        ours 120 mpirun ${asroot[@]+"${asroot[@]}"} -x LD_LIBRARY_PATH -np 1 "$ALEXNET" "${args[@]}" --parallel data \
            --out /tmp/dp-data >"$OUT/dp-data.log" 2>&1
        rc=$?
        report "dp: mpirun -np 1 --parallel data" $rc
        [ "$rc" = 0 ] || tail -n 3 "$OUT/dp-data.log"
        # every tensor of the two checkpoints, byte for byte (the largest difference where not)
        limited 60 "$PYTHON" - /tmp/dp-plain/checkpoint.safetensors /tmp/dp-data/checkpoint.safetensors <<'EOF' 2>&1 |
import array, json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    return {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in head.items() if k != "__metadata__"}
try:
    a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
except (OSError, ValueError) as e:
    sys.exit(f"cannot read the checkpoints: {e}")
bad = []
for k in sorted(set(a) | set(b)):
    if a.get(k) == b.get(k):
        continue
    if k in a and k in b and a[k][0] == b[k][0] == "F32" and a[k][1] == b[k][1]:
        x, y = array.array("f", a[k][2]), array.array("f", b[k][2])
        bad.append(f"{k} (largest difference {max(abs(p - q) for p, q in zip(x, y)):.3g})")
    else:
        bad.append(f"{k} (missing, or another dtype or shape)")
print(f"{len(a)} tensors in the plain run's checkpoint, {len(bad)} differ" + "".join("\n  " + d for d in bad[:10]))
sys.exit(1 if bad or not a else 0)
EOF
            tee -a "$OUT/summary.txt"
        report "dp: checkpoints compared" "${PIPESTATUS[0]}"
    fi
fi
section ""
say "done in $SECONDS s"
