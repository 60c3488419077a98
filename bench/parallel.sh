#!/usr/bin/env bash
# bench/parallel.sh: one process with T threads beside T ranks of one thread each, on the same
# machine and data, for data parallel and the paper's two towers: training images/s, the share of
# the step rank 0 spends waiting for the others (exchanges not hidden behind computation, and the
# ranks' imbalance), and the bytes rank 0 sends per step. Each configuration trains STEPS steps
# from the same seed (the first step is included), one after the other.
#
#   bench/parallel.sh [IMAGE_FOLDER]      (default ../shared/data/imagenette)
#   env: STEPS (default 6), BATCH (128), THREADS (2), BIN (build/alexnet)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data/imagenette}"
STEPS="${STEPS:-6}" BATCH="${BATCH:-128}" THREADS="${THREADS:-2}" BIN="${BIN:-build/alexnet}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work="$(mktemp -d /tmp/alexnet-parallel-XXXXXX)"
trap 'rm -rf "$work"' EXIT
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "machine: $cpu, $(nproc) cores; $(date -u +%Y-%m-%d); batch $BATCH, $STEPS steps, data $DATA"

run() { # label model launcher-args... -- train-args...
    local label=$1 model=$2; shift 2
    local launcher=()
    while [ "$1" != "--" ]; do launcher+=("$1"); shift; done
    shift
    local log="$work/$label.log"
    "${launcher[@]}" "$BIN" train --model "$model" --data "$DATA" --batch "$BATCH" --max-steps "$STEPS" \
        --epochs 1 --limit-val 8 --seed 1 --out "$work/$label" "$@" >"$log" 2>&1 || { echo "$label failed:"; tail -3 "$log"; exit 1; }
    local line; line="$(grep '^steps:' "$log")"
    local ips wait mb
    ips="$(sed -n 's/.*, \([0-9.]*\) images\/s.*/\1/p' <<<"$line")"
    wait="$(sed -n 's/.*(\([0-9.]*\)% of the steps).*/\1/p' <<<"$line")"
    mb="$(sed -n 's/.*sent \([0-9.]*\) MB a step.*/\1/p' <<<"$line")"
    printf '| %s | %s | %s | %s | %s |\n' "$label" "$model" "$ips" "${wait:--}" "${mb:--}"
    echo "$ips" >"$work/$label.ips"
}

mpi=(mpirun -np "$THREADS" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
echo
echo "| run | model | images/s | rank 0 waiting, % of the step | MB sent by rank 0 per step |"
echo "| --- | --- | --- | --- | --- |"
OMP_NUM_THREADS=$THREADS run "1 process x $THREADS threads" alexnet --
run "$THREADS ranks x 1 thread, data parallel" alexnet "${mpi[@]}" -- --parallel data
if [ "$THREADS" -eq 2 ]; then
    run "2 ranks x 1 thread, two towers" alexnet "${mpi[@]}" -- --parallel towers
fi
echo
one="$(cat "$work/1 process x $THREADS threads.ips")"
for f in "$work"/*ranks*.ips; do
    label="$(basename "$f" .ips)"
    awk -v a="$(cat "$f")" -v b="$one" -v l="$label" 'BEGIN { printf "%s: %.2fx the one-process images/s\n", l, a / b }'
done
