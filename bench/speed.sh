#!/bin/bash
# speed.sh: AlexNet speed on this CPU, ours beside PyTorch's, in one run on the same machine:
# images/s of inference (batch 1, 32, 128) and of one training step (batch 32, 128) for the paper's
# `alexnet` and torchvision's `alexnet-owt`, float32 (and bf16 where our build runs it), with the
# ratio, and our achieved GFLOP/s against the FMA peak measured at the start of each C run.
# The peer is the PyTorch a user installs with pip (the CPU wheels, with MKL and oneDNN) in the
# virtual environment that bench/pytorch_venv.sh makes at runs/pytorch-venv. It runs the same batch
# with the same threads in four variants: NCHW or channels-last memory format, float32 or bf16
# autocast (bench/speed_pytorch.py --layout nchw|cl --dtype fp32|bf16). Our float32 is compared
# with the faster PyTorch float32 variant, our bf16 with the faster PyTorch bf16 variant.
#
#   bench/speed.sh [THREADS]        (default: the online CPUs)
# Each row runs ROUNDS times (default 3), ours and PyTorch taking turns, and reports the medians:
# this VM's speed drifts by 10-20% over minutes, for both.
# Environment: ALEXNET (default build/alexnet), PYTHON (default runs/pytorch-venv/bin/python; without
# it /usr/bin/python3, Debian's torch 1.13, which is not the peer of record), QUICK=1 runs only the
# batch-128 training rows, CONFIGS the rows ("infer:1 train:128": mode:batch), ROUNDS, STEPS (timed steps per run, for a quick check; default 3 for
# training at batch >= 128, else 5), FCCONV=1 times alexnet-owt with its Linear layers as
# convolutions (default: only where the torch has no MKL, as Debian's with its generic BLAS),
# PRECISIONS ("fp32 bf16"; default fp32 alone on CPUs with neither AVX512_BF16 nor AMX, where
# PyTorch's bf16 is emulated and ours is float32 arithmetic on rounded operands).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALEXNET=${ALEXNET:-$ROOT/build/alexnet}
VENV_PY=$ROOT/runs/pytorch-venv/bin/python
PEER_NOTE=""
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$VENV_PY" ]; then
        PYTHON=$VENV_PY
    else
        echo "speed.sh: $VENV_PY not found: run bench/pytorch_venv.sh for the pip PyTorch peer;" \
            "falling back to /usr/bin/python3 (Debian's torch)" >&2
        PYTHON=/usr/bin/python3
    fi
fi
if [ "$PYTHON" != "$VENV_PY" ]; then
    [ "$PYTHON" = /usr/bin/python3 ] && PEER_NOTE="Debian's torch" || PEER_NOTE="PYTHON=$PYTHON"
    PEER_NOTE="NOTE: PyTorch here is $PEER_NOTE, not the peer of record (the pip wheels of bench/pytorch_venv.sh)"
fi
T=${1:-$(getconf _NPROCESSORS_ONLN)}
ROUNDS=${ROUNDS:-3}
export OMP_NUM_THREADS=$T
[ -x "$ALEXNET" ] || { echo "speed.sh: $ALEXNET not found (run make)" >&2; exit 1; }
PEER_INFO=$("$PYTHON" "$ROOT/bench/speed_pytorch.py" --info) ||
    { echo "speed.sh: $PYTHON cannot import torch (run bench/pytorch_venv.sh)" >&2; exit 1; }
if [ -z "${FCCONV:-}" ]; then
    case $PEER_INFO in *"MKL none"*) FCCONV=1 ;; *) FCCONV=0 ;; esac
fi
PRECISIONS_SET=${PRECISIONS:-}
PRECISIONS=${PRECISIONS:-fp32 bf16}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# median over the rounds of a row's images/s (files PREFIX-r1, PREFIX-r2, ...)
rate() { { cat "$1"-r* 2>/dev/null || true; } | sed -n 's/^images\/s: //p' | median; }
steps_for() { # model mode batch
    if [ -n "${STEPS:-}" ]; then echo "$STEPS"; elif [ "$2" = train ] && [ "$3" -ge 128 ]; then echo 3; else echo 5; fi
}

rows=()
if [ -n "${CONFIGS:-}" ]; then
    configs=$CONFIGS
elif [ "${QUICK:-0}" = 1 ]; then
    configs="train:128"
else
    configs="infer:1 infer:32 infer:128 train:32 train:128"
fi
CPU=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), ${CPU:-unknown CPU}, $T threads"
echo "== PyTorch: $PYTHON: $PEER_INFO"
[ -z "$PEER_NOTE" ] || echo "== $PEER_NOTE"
"$ALEXNET" bench --peak | tee "$TMP/peak"
PEAK=$(sed -n 's/^GFLOP\/s: //p' "$TMP/peak")
PEAK16=$(sed -n 's/^bfloat16 AVX512_BF16 dot products: \([0-9.]*\) GFLOP.*/\1/p' "$TMP/peak")
# bf16 needs AVX512_BF16 or AMX to mean anything: without them PyTorch emulates it (many times slower)
# and ours is float32 arithmetic on rounded operands; unless PRECISIONS says otherwise, fp32 only
if [ -z "$PRECISIONS_SET" ] && [ -z "$PEAK16" ] && ! grep -q '^AMX bfloat16 tiles: reported' "$TMP/peak"; then
    PRECISIONS=fp32
    echo "== bf16 rows skipped: this CPU has neither AVX512_BF16 nor AMX (PRECISIONS=\"fp32 bf16\" runs them)"
fi
VARIANTS=""
for prec in $PRECISIONS; do VARIANTS="$VARIANTS nchw-$prec cl-$prec"; done
for model in alexnet alexnet-owt; do
    peer=$model; [ "$model" = alexnet-owt ] && [ "$FCCONV" = 1 ] && peer=alexnet-owt-fcconv
    for cfg in $configs; do
        mode=${cfg%%:*}; batch=${cfg#*:}; steps=$(steps_for "$model" "$mode" "$batch")
        for r in $(seq "$ROUNDS"); do # ours and PyTorch take turns, so a slow spell hits both
            for prec in $PRECISIONS; do
                c="$TMP/c-$model-$mode-$batch-$prec-r$r"
                [ "$prec" = bf16 ] && [ "$r" -gt 1 ] && [ ! -s "$TMP/c-$model-$mode-$batch-$prec-r1" ] && continue
                echo "== alexnet bench --model $model --mode $mode --batch $batch --precision $prec (round $r)"
                if "$ALEXNET" bench --model "$model" --mode "$mode" --batch "$batch" --precision "$prec" \
                    --steps "$steps" > "$c" 2>&1; then tail -n 2 "$c"; else tail -n 1 "$c"; : > "$c"; fi
            done
            for v in $VARIANTS; do
                p="$TMP/p-$model-$mode-$batch-$v-r$r"
                [ "$r" -gt 1 ] && ! grep -q '^images/s: ' "$TMP/p-$model-$mode-$batch-$v-r1" && continue
                echo "== speed_pytorch.py --model $peer --mode $mode --batch $batch --layout ${v%-*} --dtype ${v#*-} (round $r)"
                "$PYTHON" "$ROOT/bench/speed_pytorch.py" --model "$peer" --mode "$mode" --batch "$batch" \
                    --threads "$T" --steps "$steps" --layout "${v%-*}" --dtype "${v#*-}" > "$p" 2>&1 || true
                tail -n 1 "$p"
            done
        done
        rows+=("$model|$mode|$batch")
    done
done

# best PRECISION MODEL MODE BATCH: "images/s variant" of the fastest PyTorch variant in PRECISION
# (any: of either precision)
best() {
    for v in $VARIANTS; do
        { [ "$1" = any ] || [ "${v#*-}" = "$1" ]; } && echo "$(rate "$TMP/p-$2-$3-$4-$v") $v"
    done | awk 'NF == 2 && $1 > b { b = $1; n = $2 } END { if (b > 0) print b, n }'
}
# ratio_any FP32 BF16 "BEST VARIANT": our faster precision / PyTorch's fastest variant, naming both
ratio_any() {
    local ours=$1 which=fp32
    if [ -n "$2" ] && { [ -z "$ours" ] || awk -v a="$2" -v b="$ours" 'BEGIN { exit !(a > b) }'; }; then ours=$2 which=bf16; fi
    [ -n "$ours" ] && [ -n "$3" ] && awk -v a="$ours" -v w="$which" -v b="${3% *}" -v n="${3#* }" \
        'BEGIN { printf "%.2fx %s/%s", a / b, w, n }' || echo -
}
# ratio OURS "BEST VARIANT": ours / best, naming the variant
ratio() {
    [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="${2% *}" -v n="${2#* }" 'BEGIN { printf "%.2fx %s", a / b, n }' || echo -
}
echo
echo "images/s (median of $ROUNDS rounds), $T threads, same machine, same run; FMA peak $PEAK GFLOP/s (float32)${PEAK16:+, AVX512_BF16 dot-product peak $PEAK16 GFLOP/s}"
echo "PyTorch: $PEER_INFO${PEER_NOTE:+; $PEER_NOTE}"
[ "$FCCONV" = 1 ] && echo "(alexnet-owt's PyTorch runs time its Linear layers as convolutions: FCCONV=1)"
fmt='%-12s %-5s %5s | %8s %8s %7s | %8s %8s %7s | %9s %9s %9s %9s | %-15s %-15s %-20s\n'
printf "$fmt" model mode batch "C fp32" "GFLOP/s" "%peak" "C bf16" "GFLOP/s" "%peak" \
    "PT nchw" "PT cl" "PT nchw" "PT cl" "fp32 ratio" "bf16 ratio" "best ratio"
printf "$fmt" "" "" "" "" "" "" "" "" "" "fp32" "fp32" "bf16" "bf16" "(best PT fp32)" "(best PT bf16)" "(either precision)"
for row in "${rows[@]}"; do
    IFS='|' read -r model mode batch <<< "$row"
    cf=$(rate "$TMP/c-$model-$mode-$batch-fp32"); cb=$(rate "$TMP/c-$model-$mode-$batch-bf16")
    gf() { { cat "$1"-r* 2>/dev/null || true; } | { grep 'timed step' || true; } | sed -n 's/.* \([0-9.]*\) GFLOP\/s (.*/\1/p' | median; }
    g32=$(gf "$TMP/c-$model-$mode-$batch-fp32"); g16=$(gf "$TMP/c-$model-$mode-$batch-bf16")
    pv=(); for v in nchw-fp32 cl-fp32 nchw-bf16 cl-bf16; do x=$(rate "$TMP/p-$model-$mode-$batch-$v"); pv+=("${x:--}"); done
    pct=$([ -n "$g32" ] && awk -v g="$g32" -v p="$PEAK" 'BEGIN { printf "%.1f%%", 100 * g / p }' || echo -)
    # bf16 on AVX512_BF16 dot products (the C run says so) is measured against their peak, marked *
    p16=$PEAK; mark=""
    if [ -n "$PEAK16" ] && cat "$TMP/c-$model-$mode-$batch-bf16"-r* 2>/dev/null | grep -q 'bf16 dot-product peak'; then
        p16=$PEAK16; mark="*"
    fi
    pct16=$([ -n "$g16" ] && awk -v g="$g16" -v p="$p16" -v m="$mark" 'BEGIN { printf "%.1f%%%s", 100 * g / p, m }' || echo -)
    printf "$fmt" "$model" "$mode" "$batch" "${cf:--}" "${g32:--}" "$pct" "${cb:--}" "${g16:--}" "$pct16" \
        "${pv[@]}" "$(ratio "$cf" "$(best fp32 "$model" "$mode" "$batch")")" \
        "$(ratio "$cb" "$(best bf16 "$model" "$mode" "$batch")")" \
        "$(ratio_any "$cf" "$cb" "$(best any "$model" "$mode" "$batch")")"
done
echo
echo "PT: PyTorch; nchw / cl: NCHW or channels-last memory format; bf16: torch.autocast(cpu, bfloat16)."
echo "ratios: ours / the fastest PyTorch variant of the same precision, which is named; - where a side did not run;"
echo "best ratio: our faster precision / PyTorch's fastest variant of either precision, both named."
echo "GFLOP/s: FLOPs of the step (training: 3x the forward) per second; %peak: of the FMA peak above"
echo "(* : of the AVX512_BF16 dot-product peak, where our bf16 mode runs on those instructions)."
