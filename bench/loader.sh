#!/bin/bash
# loader.sh: the input-pipeline benchmark, side by side on one machine in one run:
#   1. Pillow + torchvision transforms (bench/loader_pillow.py), 1 process, 1 thread
#   2. alexnet bench --loader from the JPEG folder, --threads 1
#   3. alexnet bench --loader from a shard file (alexnet prep), --threads 1, 5 passes
# all doing decode (or shard copy) + the paper's training augmentation on the first N images of the
# training split, one after the other (never concurrently), then a table of images/s per core and
# the ratio to Pillow.
#
#   bench/loader.sh [DATA [N [SHARD]]]
#     DATA   image folder (default ../shared/data/imagenette, beside the repository)
#     N      images (default 2000)
#     SHARD  shard file of DATA; without it one is made with `alexnet prep` in a temporary folder
#            (not timed; the full Imagenette takes a few minutes) and deleted afterwards
# Environment: ALEXNET (default build/alexnet), PYTHON (default /usr/bin/python3).
# The JPEG files and the shard are read once before timing, so all three measure from the page
# cache. "images/s per core" is the wall-clock rate of the single-threaded run; the cpu column is
# images per cpu-second of the process (less sensitive to other load on the machine).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:-$ROOT/../shared/data/imagenette}
N=${2:-2000}
SHARD=${3:-}
ALEXNET=${ALEXNET:-$ROOT/build/alexnet}
PYTHON=${PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=1

[ -x "$ALEXNET" ] || { echo "loader.sh: $ALEXNET not found (run make)" >&2; exit 1; }
[ -d "$DATA/train" ] || { echo "loader.sh: $DATA/train: no such folder" >&2; exit 1; }
case $N in ''|*[!0-9]*) echo "loader.sh: N must be a positive number, not '$N'" >&2; exit 1;; esac

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -z "$SHARD" ]; then
    SHARD=$TMP/data.shard
    echo "== preparing $SHARD from $DATA (alexnet prep, not timed)"
    "$ALEXNET" prep --data "$DATA" --out "$SHARD" --quiet
elif [ ! -f "$SHARD" ]; then
    echo "loader.sh: $SHARD: no such file" >&2; exit 1
fi

echo "== reading the JPEG files and the shard into the page cache"
find "$DATA/train" -type f -exec cat {} + > /dev/null
cat "$SHARD" > /dev/null

load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD=()
run() { # name, command...: runs it, shows its output, keeps it in $TMP/name
    local name=$1; shift
    LOAD+=("$(load)")
    echo "== $name (load average before: ${LOAD[-1]})"
    "$@" | tee "$TMP/$name"
}
run pillow "$PYTHON" "$ROOT/bench/loader_pillow.py" "$DATA" "$N"
run jpeg "$ALEXNET" bench --loader --data "$DATA" --limit "$N" --threads 1
run shard "$ALEXNET" bench --loader --data "$SHARD" --limit "$N" --threads 1 --epochs 5
LOAD+=("$(load)")

rate() { sed -n 's/^images\/s: //p' "$TMP/$1" | tail -n 1; }
cpu() { sed -n 's/.*cpu [0-9.]* s: \([0-9.]*\) images per cpu-second.*/\1/p' "$TMP/$1" | tail -n 1; }
images() { sed -n 's/^[a-z]*: \([0-9]*\) images in .*/\1/p' "$TMP/$1" | tail -n 1; }
versions=$("$PYTHON" -c 'import PIL, torchvision; print(f"Pillow {PIL.__version__} + torchvision {torchvision.__version__}")')
P=$(rate pillow)

echo
echo "decode + augment, first $N training images of $DATA"
echo "(resize to 256, centre 256x256, random 224 crop, mirror, PCA lighting 0.1, mean subtraction)"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu:     $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(getconf _NPROCESSORS_ONLN) online CPUs"
echo "load:    ${LOAD[0]} (before) / ${LOAD[1]} / ${LOAD[2]} / ${LOAD[3]} (after)   (1, 5, 15 min averages)"
echo "threads: 1 decoding thread each, OMP_NUM_THREADS=1, run one after the other"
echo
printf '%-36s %7s %6s %13s %9s %11s %9s\n' "pipeline" "threads" "images" "images/s/core" "vs Pillow" \
    "img/cpu-sec" "vs Pillow"
for row in "pillow|$versions" "jpeg|alexnet bench --loader, JPEG" "shard|alexnet bench --loader, shard"; do
    key=${row%%|*}; label=${row#*|}
    r=$(rate "$key"); c=$(cpu "$key")
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
    printf '%-36s %7s %6s %13s %9s %11s %9s\n' "$label" 1 "$(images "$key")" "$r" "$(ratio "$r" "$P")" \
        "$c" "$(ratio "$c" "$(cpu pillow)")"
done
echo
echo "images/s/core: wall-clock rate of the timed passes, 1 thread, after an untimed warm-up (the shard:"
echo "5 passes of the same loader, as training's epochs); img/cpu-sec: images per cpu-second of the process"
echo "during the timed passes (less sensitive to other load on the machine)."
