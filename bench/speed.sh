#!/bin/bash
# speed.sh: AlexNet speed on this CPU, ours beside PyTorch's, in one run on the same machine:
# images/s of inference (batch 1, 32, 128) and of one training step (batch 32, 128) for the paper's
# `alexnet` and torchvision's `alexnet-owt`, float32 (and bf16 where our build runs it), with the
# ratio, and our achieved GFLOP/s against the FMA peak measured at the start of each C run.
# PyTorch runs the same batch with the same threads; for alexnet-owt both torchvision's model as it
# is and with its Linear layers as convolutions (faster with Debian's generic BLAS) are timed and
# the ratio is taken against the faster of the two.
#
#   bench/speed.sh [THREADS]        (default: the online CPUs)
# Each row runs ROUNDS times (default 3), ours and PyTorch taking turns, and reports the medians:
# this VM's speed drifts by 10-20% over minutes, for both.
# Environment: ALEXNET (default build/alexnet), PYTHON (default /usr/bin/python3), QUICK=1 runs only
# the batch-128 training rows, ROUNDS.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALEXNET=${ALEXNET:-$ROOT/build/alexnet}
PYTHON=${PYTHON:-/usr/bin/python3}
T=${1:-$(getconf _NPROCESSORS_ONLN)}
ROUNDS=${ROUNDS:-3}
export OMP_NUM_THREADS=$T
[ -x "$ALEXNET" ] || { echo "speed.sh: $ALEXNET not found (run make)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# median over the rounds of a row's images/s (files PREFIX-r1, PREFIX-r2, ...)
rate() { cat "$1"-r* 2>/dev/null | sed -n 's/^images\/s: //p' | median; }
steps_for() { [ "$2" = train ] && [ "$3" -ge 128 ] && echo 3 || echo 5; } # model mode batch

rows=()
if [ "${QUICK:-0}" = 1 ]; then
    configs="train:128"
else
    configs="infer:1 infer:32 infer:128 train:32 train:128"
fi
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $T threads"
"$ALEXNET" bench --peak | tee "$TMP/peak"
PEAK=$(sed -n 's/^GFLOP\/s: //p' "$TMP/peak")
PEAK16=$(sed -n 's/^bfloat16 AVX512_BF16 dot products: \([0-9.]*\) GFLOP.*/\1/p' "$TMP/peak")
for model in alexnet alexnet-owt; do
    for cfg in $configs; do
        mode=${cfg%%:*}; batch=${cfg#*:}; steps=$(steps_for "$model" "$mode" "$batch")
        for r in $(seq "$ROUNDS"); do # ours and PyTorch take turns, so a slow spell hits both
            for prec in fp32 bf16; do
                c="$TMP/c-$model-$mode-$batch-$prec-r$r"
                [ "$prec" = bf16 ] && [ "$r" -gt 1 ] && [ ! -s "$TMP/c-$model-$mode-$batch-$prec-r1" ] && continue
                echo "== alexnet bench --model $model --mode $mode --batch $batch --precision $prec (round $r)"
                if "$ALEXNET" bench --model "$model" --mode "$mode" --batch "$batch" --precision "$prec" \
                    --steps "$steps" > "$c" 2>&1; then tail -n 2 "$c"; else tail -n 1 "$c"; : > "$c"; fi
            done
            peers=("$model"); [ "$model" = alexnet-owt ] && peers+=(alexnet-owt-fcconv)
            for peer in "${peers[@]}"; do
                p="$TMP/p-$peer-$mode-$batch-r$r"
                echo "== speed_pytorch.py --model $peer --mode $mode --batch $batch (round $r)"
                "$PYTHON" "$ROOT/bench/speed_pytorch.py" --model "$peer" --mode "$mode" --batch "$batch" \
                    --threads "$T" --steps "$steps" > "$p" 2>&1 || true
                tail -n 1 "$p"
            done
        done
        rows+=("$model|$mode|$batch")
    done
done

echo
echo "images/s (median of $ROUNDS rounds), $T threads, same machine, same run; FMA peak $PEAK GFLOP/s (float32)${PEAK16:+, AVX512_BF16 dot-product peak $PEAK16 GFLOP/s}"
printf '%-12s %-5s %5s | %9s %8s %7s | %9s %8s %7s | %10s %10s | %8s %8s\n' model mode batch "C fp32" "GFLOP/s" "%peak" \
    "C bf16" "GFLOP/s" "%peak" "PyTorch" "(fc-conv)" "fp32 x" "bf16 x"
for row in "${rows[@]}"; do
    IFS='|' read -r model mode batch <<< "$row"
    cf=$(rate "$TMP/c-$model-$mode-$batch-fp32"); cb=$(rate "$TMP/c-$model-$mode-$batch-bf16")
    gf() { cat "$1"-r* 2>/dev/null | { grep 'timed step' || true; } | sed -n 's/.* \([0-9.]*\) GFLOP\/s (.*/\1/p' | median; }
    g32=$(gf "$TMP/c-$model-$mode-$batch-fp32"); g16=$(gf "$TMP/c-$model-$mode-$batch-bf16")
    p=$(rate "$TMP/p-$model-$mode-$batch"); pc=""
    [ "$model" = alexnet-owt ] && pc=$(rate "$TMP/p-alexnet-owt-fcconv-$mode-$batch")
    best=$(awk -v a="${p:-0}" -v b="${pc:-0}" 'BEGIN { print (a > b ? a : b) }')
    ratio() { [ -n "$1" ] && awk -v a="$1" -v b="$best" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }' || echo -; }
    pct=$([ -n "$g32" ] && awk -v g="$g32" -v p="$PEAK" 'BEGIN { printf "%.1f%%", 100 * g / p }' || echo -)
    # bf16 on AVX512_BF16 dot products (the C run says so) is measured against their peak, marked *
    p16=$PEAK; mark=""
    if [ -n "$PEAK16" ] && cat "$TMP/c-$model-$mode-$batch-bf16"-r* 2>/dev/null | grep -q 'bf16 dot-product peak'; then
        p16=$PEAK16; mark="*"
    fi
    pct16=$([ -n "$g16" ] && awk -v g="$g16" -v p="$p16" -v m="$mark" 'BEGIN { printf "%.1f%%%s", 100 * g / p, m }' || echo -)
    printf '%-12s %-5s %5s | %9s %8s %7s | %9s %8s %7s | %10s %10s | %8s %8s\n' "$model" "$mode" "$batch" "${cf:--}" \
        "${g32:--}" "$pct" "${cb:--}" "${g16:--}" "$pct16" "${p:--}" "${pc:--}" "$(ratio "$cf")" "$(ratio "$cb")"
done
echo
echo "PyTorch: $("$PYTHON" -c 'import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")')"
echo "ratios: ours / the faster PyTorch variant; bf16 ratios are against PyTorch float32 (the issue's yardstick)."
echo "GFLOP/s: FLOPs of the step (training: 3x the forward) per second; %peak: of the FMA peak above"
echo "(* : of the AVX512_BF16 dot-product peak, where our bf16 mode runs on those instructions)."
