#!/usr/bin/env bash
# bench/fault_table.sh: runs each fault of docs/RELIABILITY.md's table against build/alexnet and
# prints one markdown row per fault: what the user sees (exit status, the first stderr line) and
# what is kept on disk. Needs Fashion-MNIST (dataset-fashion-mnist) and, for the disk-full row, root
# (a 1 MiB tmpfs); ../shared/data for the image rows. Usage: bench/fault_table.sh [BIN]
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/alexnet}"
FM=/usr/share/datasets/fashion-mnist
T="$(mktemp -d /tmp/alexnet-faults-XXXXXX)"
trap 'mountpoint -q "$T/full" && umount "$T/full"; rm -rf "$T"' EXIT
TRAIN=(train --model convnet4 --data "$FM" --limit-train 5000 --limit-val 500 --batch 50 --epochs 2)

row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
first_err() { grep -m1 -E '^alexnet: |stopped at step' "$1" | sed 's/|/\\|/g' | cut -c1-240; }
# the step a checkpoint holds ("-" when none or unreadable)
ckpt_step() { python3 - "$1" <<'EOF' 2>/dev/null || echo "-"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"]["step"])
EOF
}
wait_for() { for _ in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }

echo "| fault | what the user sees | exit | what is kept |"
echo "| --- | --- | --- | --- |"

for sig in INT TERM; do
    out="$T/sig$sig"
    "$BIN" "${TRAIN[@]}" --out "$out" 2>"$T/err" &
    pid=$!
    wait_for "$out/log.csv"; sleep 3
    kill -s "$sig" "$pid"; wait "$pid"; rc=$?
    step=$(ckpt_step "$out/checkpoint.safetensors")
    "$BIN" train --resume "$out/checkpoint.safetensors" --data "$FM" --out "$out" --limit-train 5000 --limit-val 500 \
        --batch 50 --epochs 1 --quiet 2>"$T/err2"; rrc=$?
    row "SIG$sig during training (Ctrl-C, or a batch scheduler's stop)" "\`$(first_err "$T/err")\`" "$rc" \
        "checkpoint at step $step (the step it stopped at); --resume from it finished with exit $rrc"
done

# kill -9 at 25 moments of a run that checkpoints after every step: each try resumes the last
# checkpoint, waits until it has written a new one, then kills it a random 0-0.5 s later
out="$T/kill9"; bad=0; steps=""; tmps=0
"$BIN" "${TRAIN[@]}" --out "$out" --save-every 1 --quiet 2>/dev/null &
pid=$!; wait_for "$out/checkpoint.safetensors"; kill -9 "$pid"; wait "$pid" 2>/dev/null
for i in $(seq 25); do
    before=$(stat -c %Y.%s "$out/checkpoint.safetensors" 2>/dev/null)
    "$BIN" train --resume "$out/checkpoint.safetensors" --data "$FM" --out "$out" --limit-train 5000 \
        --limit-val 500 --batch 50 --epochs 2 --save-every 1 --quiet 2>/dev/null &
    pid=$!
    for _ in $(seq 300); do [ "$(stat -c %Y.%s "$out/checkpoint.safetensors" 2>/dev/null)" != "$before" ] && break; sleep 0.1; done
    sleep "0.$((RANDOM % 5))$((RANDOM % 10))"
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    ls "$out" | grep -q '\.tmp$' && tmps=$((tmps + 1))
    s=$(ckpt_step "$out/checkpoint.safetensors"); [ "$s" = "-" ] && bad=$((bad + 1)); steps="$steps $s"
done
row "kill -9 at 25 random moments of a run that writes a checkpoint after every step" "nothing (the process is gone)" \
    "137" "$((25 - bad)) of 25 kills left a readable checkpoint, each resumed by the next try (steps:$steps); $tmps kills left a half-written checkpoint.safetensors.tmp beside it, never read and replaced by the next save"

# disk full: a 1 MiB file system holds one checkpoint of convnet4 (650 KB), not its replacement too
mkdir -p "$T/full"
if mount -t tmpfs -o size=1m tmpfs "$T/full" 2>/dev/null; then
    "$BIN" "${TRAIN[@]}" --out "$T/full/run" --save-every 5 --max-steps 20 --quiet 2>"$T/err"; rc=$?
    step=$(ckpt_step "$T/full/run/checkpoint.safetensors")
    row "disk full while writing a checkpoint" "\`$(first_err "$T/err")\`" "$rc" \
        "the previous checkpoint, step $step, whole; the partial .tmp file is removed: $(ls "$T/full/run" | tr '\n' ' ')"
    umount "$T/full"
else
    row "disk full while writing a checkpoint" "(not run: mounting a tmpfs needs root)" "" ""
fi

out="$T/diverge"
"$BIN" "${TRAIN[@]}" --out "$out" --save-every 1 --lr 1e4 --quiet 2>"$T/err"; rc=$?
row "a diverging run (\`--lr 1e4\`)" "\`$(first_err "$T/err")\`" "$rc" \
    "checkpoint at step $(ckpt_step "$out/checkpoint.safetensors") (finite weights); no NaN checkpoint is ever written"

mkdir -p "$T/fm"; cp "$FM"/* "$T/fm/"
head -c 2000000 "$FM/train-images-idx3-ubyte.gz" >"$T/fm/train-images-idx3-ubyte.gz"
"$BIN" "${TRAIN[@]/$FM/$T/fm}" --out "$T/x" 2>"$T/err"; rc=$?
row "truncated dataset file (IDX .gz cut at 2 MB)" "\`$(first_err "$T/err")\`" "$rc" "nothing is written"

cp "$FM/train-labels-idx1-ubyte.gz" "$T/fm/"; gunzip -c "$FM/train-images-idx3-ubyte.gz" >"$T/fm/train-images-idx3-ubyte"
rm "$T/fm/train-images-idx3-ubyte.gz"; printf '\xff\xff\xff\xff' | dd of="$T/fm/train-images-idx3-ubyte" bs=1 seek=4 conv=notrunc 2>/dev/null
"$BIN" "${TRAIN[@]/$FM/$T/fm}" --out "$T/x" 2>"$T/err"; rc=$?
row "corrupt dataset header (IDX image count 2^32-1)" "\`$(first_err "$T/err")\`" "$rc" "nothing is written"

out="$T/ck"
"$BIN" "${TRAIN[@]}" --out "$out" --max-steps 3 --quiet 2>/dev/null
head -c 100000 "$out/checkpoint.safetensors" >"$T/trunc.safetensors"
"$BIN" train --resume "$T/trunc.safetensors" --data "$FM" --out "$out" 2>"$T/err"; rc=$?
row "truncated checkpoint given to --resume" "\`$(first_err "$T/err")\`" "$rc" "the run's own checkpoint, untouched"
hdr='{"conv1.weight":{"dtype":"F32","shape":[99999999,99999999],"data_offsets":[0,4]}}'
{ printf "$(printf '\\x%02x' ${#hdr} 0 0 0 0 0 0 0)"; printf '%s' "$hdr"; printf '\0\0\0\0'; } >"$T/corrupt.safetensors"
"$BIN" eval --model convnet4 --weights "$T/corrupt.safetensors" --data "$FM" 2>"$T/err"; rc=$?
row "corrupt checkpoint header (huge shape) given to eval" "\`$(first_err "$T/err")\`" "$rc" "nothing is written"

SHARED="${ALEXNET_SHARED_DATA:-../shared/data}"
img="$(ls "$SHARED"/demo-images/*.jp*g 2>/dev/null | head -1)"
if [ -n "$img" ]; then
    head -c 3000 "$img" >"$T/cut.jpg"
    "$BIN" classify --model convnet4 --weights "$out/checkpoint.safetensors" "$T/cut.jpg" 2>"$T/err" >/dev/null; rc=$?
    row "truncated JPEG given to classify" "\`$(first_err "$T/err")\`" "$rc" "nothing is written"
    printf 'not an image' >"$T/fake.jpg"
    "$BIN" classify --model convnet4 --weights "$out/checkpoint.safetensors" "$T/fake.jpg" 2>"$T/err" >/dev/null; rc=$?
    row "a text file named .jpg given to classify" "\`$(first_err "$T/err")\`" "$rc" "nothing is written"
    mkdir -p "$T/folder/train/a" "$T/folder/train/b" "$T/folder/val/a" "$T/folder/val/b"
    for d in train/a train/b val/a val/b; do cp "$img" "$T/folder/$d/1.jpg"; cp "$img" "$T/folder/$d/2.jpg"; done
    cp "$T/cut.jpg" "$T/folder/train/a/3.jpg"; cp "$T/fake.jpg" "$T/folder/train/b/4.jpg"
    "$BIN" train --model convnet4 --data "$T/folder" --out "$T/fo" --epochs 1 --batch 2 2>"$T/err"; rc=$?
    row "a truncated and a fake JPEG inside a training folder" \
        "\`$(grep -m1 'warning' "$T/err" | cut -c1-200)\` (one warning per file; the run goes on); last line: \`$(tail -1 "$T/err" | cut -c1-160)\`" "$rc" \
        "the run's checkpoint, step $(ckpt_step "$T/fo/checkpoint.safetensors"); the bad files are counted at the end"
fi
