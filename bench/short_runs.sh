#!/usr/bin/env bash
# short_runs.sh: short AlexNet runs on Imagenette that separate the two suspects behind the
# "PyTorch stuck at 90%" rows of docs/RESULTS.md: the peer's PCA lighting (255 times too strong
# until 2026-12-02) and the caffe recipe's biases (conv2/conv4/conv5 1 and one rate for all, until
# 2026-12-02; Caffe's bvlc_alexnet since). Every run: `alexnet`, batch 32, lr 0.01, momentum 0.9,
# weight decay 0.0005, STEPS steps (default 150), seeds 1 and 2, one run at a time:
#   pt-caffe          PyTorch peer, caffe recipe (new biases), lighting as the C side
#   pt-caffe-bug255   the same with --lighting-scale 255 (the peer's old lighting bug)
#   pt-caffe-oldbias  PyTorch, --bias-variant old (the historical C caffe biases), lighting fixed
#   pt-caffe-oldbias-bug255  both old: the configuration of the invalid 2026-11-27/28 PyTorch rows
#   c-caffe           C, --recipe caffe (Caffe's bvlc_alexnet), build $NEW_BIN
#   c-caffe-old       C, the old --recipe caffe (biases as before 2026-12-02), build $OLD_BIN
#   pt-paper, c-paper (optional, not in the default list) PyTorch and C, --recipe paper (biases 1
#                     in conv2/4/5 and fc6/7, one rate for all; the C recipe has not changed)
# and, per recipe (paper, caffe, caffe with old biases) and lighting (fixed, x255), the share of
# fc6 units that are 0 after the ReLU for every image of the peer's first batch at initialisation.
#
# Per run it records the mean training loss of steps 1-25 and of the last 25 steps, the training
# top-1 error of the last 50 steps, and the centre-crop validation top-1 error on 500 images spread
# evenly over the validation split (k * 3925 // 500, `alexnet eval --limit 500`) at the end.
# PyTorch: from its per-step log (--step-log). C: from the checkpoint's running sums (loss_sum,
# err_sum, seen), the run stopped and resumed (bit-identical) at steps 25, STEPS-50, STEPS-25, STEPS.
#
# Outputs in $OUT (default bench/results/short_runs/): <run>_s<seed>.steps.csv (PyTorch: step,
# loss,top1_err; C: step,loss_sum,err_sum,seen at the stops), <run>_s<seed>.log, fc6_dead.csv,
# runs.csv (one row per run) and table.md (the table of docs/RESULTS.md). A run whose .done file
# exists is not run again: rerunning the script continues where it stopped; `rm -r $OUT` redoes all.
# Order: the fc6 check, then seed 1 of every run, then seed 2.
#
# The two C binaries are built, unless NEW_BIN / OLD_BIN name them, from one commit ($C_COMMIT,
# default HEAD; `git archive`, no change to the checkout) into $CBUILD: "new" as it is, "old" with
# src/model/models.c's model_apply_recipe replaced by commit 9653b8f's (biases 1 in conv2, conv4,
# conv5, fc6/fc7 weights N(0, 0.005) and biases 0.1, one rate and decay for every parameter), so
# the recipe is the only difference. 9653b8f as a whole would also do, but its kernels ran at
# 0.2 images/s on the AVX2-only CPU of 2026-12-02 (no FMA kernel before b9c7a6c): 7 hours a run.
#
#   usage: bench/short_runs.sh [RUN ...]        (default: the fc6 check and all six runs)
#   env:   STEPS (150)  BATCH (32)  SEEDS ("1 2")  DATA (../shared/data/imagenette)
#          SHARD (runs/imagenette.shard; made with `alexnet prep` when missing)
#          C_COMMIT (HEAD)  CBUILD (/tmp/alexnet-short)  NEW_BIN, OLD_BIN (default: built there)
#          OUT (bench/results/short_runs)  WORK (runs/short: checkpoints, 0.5 GB each, deleted)
#          THREADS (nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-150}; BATCH=${BATCH:-32}; SEEDS=${SEEDS:-1 2}
DATA=${DATA:-../shared/data/imagenette}; SHARD=${SHARD:-runs/imagenette.shard}
C_COMMIT=${C_COMMIT:-HEAD}; CBUILD=${CBUILD:-/tmp/alexnet-short}
NEW_BIN=${NEW_BIN:-$CBUILD/new/build/alexnet}; OLD_BIN=${OLD_BIN:-$CBUILD/old/build/alexnet}
OUT=${OUT:-bench/results/short_runs}; WORK=${WORK:-runs/short}; THREADS=${THREADS:-$(nproc)}
PY=/usr/bin/python3
RUNS=("$@"); [ ${#RUNS[@]} -gt 0 ] ||
    RUNS=(fc6 pt-caffe pt-caffe-bug255 pt-caffe-oldbias pt-caffe-oldbias-bug255 c-caffe c-caffe-old)
mkdir -p "$OUT" "$WORK"
COMMON=(--lr 0.01 --momentum 0.9 --weight-decay 0.0005 --batch "$BATCH")
[ "$STEPS" -gt 75 ] || { echo "STEPS must be above 75" >&2; exit 2; }

pt_run() { # name seed extra-args...
    local name=$1 seed=$2; shift 2
    local base="$OUT/${name}_s$seed"
    [ -f "$base.done" ] && { echo "$name seed $seed: done before"; return; }
    echo "$name seed $seed: PyTorch, $STEPS steps ($(date -u +%H:%M:%S) UTC)"
    $PY bench/train_pytorch.py --data "$DATA" --recipe caffe "$@" "${COMMON[@]}" --seed "$seed" \
        --epochs 1 --max-steps "$STEPS" --stats-sample 0 --eval-at-stop 500 --threads "$THREADS" \
        --log "$WORK/epochs.csv" --checkpoint "$WORK/pt.pt" --step-log "$base.steps.csv" > "$base.log" 2>&1
    rm -f "$WORK/pt.pt"
    touch "$base.done"
}

c_build() { # which (new or old) binary: built once from $C_COMMIT into $CBUILD/which
    local which=$1 bin=$2 dir="$CBUILD/$1"
    [ -x "$bin" ] && return
    [ "$bin" = "$dir/build/alexnet" ] || { echo "$bin: not built" >&2; exit 1; }
    echo "building the $which C recipe from $(git rev-parse --short "$C_COMMIT") in $dir"
    rm -rf "$dir"; mkdir -p "$dir"
    git archive "$C_COMMIT" | tar -x -C "$dir"
    if [ "$which" = old ]; then # splice in 9653b8f's model_apply_recipe
        git show 9653b8f:src/model/models.c > "$dir/models-9653b8f.c"
        $PY - "$dir" <<'EOF'
import re, sys
d = sys.argv[1]
fn = re.compile(r"^int model_apply_recipe\(.*?^}\n", re.S | re.M)
old = fn.search(open(d + "/models-9653b8f.c").read()).group(0)
path = d + "/src/model/models.c"
new = open(path).read()
assert len(fn.findall(new)) == 1, "model_apply_recipe not found once"
open(path, "w").write(fn.sub(lambda m: old, new))
EOF
    fi
    make -C "$dir" -j1 NVCC= BUILD=build build/alexnet > "$dir/make.log" 2>&1 || { tail "$dir/make.log" >&2; exit 1; }
}

c_meta() { # checkpoint -> "step,loss_sum,err_sum,seen"
    $PY - "$1" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    m = json.loads(f.read(n))["__metadata__"]
print(f"{m['step']},{float.fromhex(m['loss_sum'])!r},{float.fromhex(m['err_sum'])!r},{m['seen']}")
EOF
}

c_run() { # name seed binary new|old [recipe]
    local name=$1 seed=$2 bin=$3 recipe=${5:-caffe}
    local base="$OUT/${name}_s$seed" dir="$WORK/$name-s$seed"
    [ -f "$base.done" ] && { echo "$name seed $seed: done before"; return; }
    c_build "$4" "$bin"
    echo "$name seed $seed: C ($bin), $STEPS steps ($(date -u +%H:%M:%S) UTC)"
    rm -rf "$dir"; : > "$base.log"
    echo "step,loss_sum,err_sum,seen" > "$base.steps.csv"
    local resume=()
    for stop in 25 $((STEPS - 50)) $((STEPS - 25)) "$STEPS"; do
        "$bin" train --model alexnet --recipe "$recipe" --data "$SHARD" "${COMMON[@]}" --seed "$seed" --epochs 1 \
            --max-steps "$stop" --out "$dir" "${resume[@]}" >> "$base.log" 2>&1
        c_meta "$dir/checkpoint.safetensors" >> "$base.steps.csv"
        resume=(--resume "$dir/checkpoint.safetensors")
    done
    "$bin" eval --model alexnet --weights "$dir/checkpoint.safetensors" --data "$SHARD" --limit 500 >> "$base.log" 2>&1
    rm -rf "$dir"
    touch "$base.done"
}

fc6_check() { # one step of the peer per recipe, lighting and seed: the fc6 line of its first batch
    local f="$OUT/fc6_dead.csv" seed scale v name
    [ -f "$f" ] && { echo "fc6 check: done before"; return; }
    echo "recipe,lighting_scale,seed,dead_units,units,batch" > "$f.tmp"
    for seed in $SEEDS; do
        for v in "paper new" "caffe new" "caffe old"; do
            set -- $v
            for scale in 1 255; do
                echo "fc6 check: $1 (biases $2), lighting x$scale, seed $seed"
                $PY bench/train_pytorch.py --data "$DATA" --recipe "$1" --bias-variant "$2" --lighting-scale "$scale" \
                    "${COMMON[@]}" --seed "$seed" --epochs 1 --max-steps 1 --stats-sample 0 --threads "$THREADS" \
                    --log "$WORK/epochs.csv" --checkpoint "$WORK/pt.pt" > "$WORK/fc6.log" 2>&1
                rm -f "$WORK/pt.pt"
                name=$1; [ "$2" = old ] && name=caffe-old
                sed -n 's/^fc6 dead at init: \([0-9]*\) of \([0-9]*\) units.* all \([0-9]*\) images.*/\1,\2,\3/p' \
                    "$WORK/fc6.log" | sed "s/^/$name,$scale,$seed,/" >> "$f.tmp"
            done
        done
    done
    mv "$f.tmp" "$f"
}

if [ ! -f "$SHARD" ]; then c_build new "$NEW_BIN"; "$NEW_BIN" prep --data "$DATA" --out "$SHARD"; fi
for seed in $SEEDS; do
    for run in "${RUNS[@]}"; do
        case $run in
        pt-caffe) pt_run "$run" "$seed" ;;
        pt-caffe-bug255) pt_run "$run" "$seed" --lighting-scale 255 ;;
        pt-caffe-oldbias) pt_run "$run" "$seed" --bias-variant old ;;
        pt-caffe-oldbias-bug255) pt_run "$run" "$seed" --bias-variant old --lighting-scale 255 ;;
        pt-paper) pt_run "$run" "$seed" --recipe paper ;;
        c-caffe) c_run "$run" "$seed" "$NEW_BIN" new ;;
        c-caffe-old) c_run "$run" "$seed" "$OLD_BIN" old ;;
        c-paper) c_run "$run" "$seed" "$NEW_BIN" new paper ;;
        fc6) fc6_check ;;
        *) echo "unknown run '$run'" >&2; exit 2 ;;
        esac
    done
done

# --- the table: runs.csv (per run) and table.md (mean of the seeds, and each seed)
$PY - "$OUT" "$STEPS" <<'EOF'
import csv, glob, os, re, sys
out, steps = sys.argv[1], int(sys.argv[2])
rows = []
for done in sorted(glob.glob(os.path.join(out, "*.done"))):
    base = done[:-5]
    name, seed = re.match(r".*/(.+)_s(\d+)$", base).groups()
    log = open(base + ".log").read()
    with open(base + ".steps.csv") as f:
        r = list(csv.DictReader(f))
    if name.startswith("c-"):
        cum = {int(x["step"]): (float(x["loss_sum"]), float(x["err_sum"]), int(x["seen"])) for x in r}
        def mean(a, b, k):  # mean over steps a+1..b from the running sums
            return (cum[b][k] - (cum[a][k] if a else 0.0)) / (cum[b][2] - (cum[a][2] if a else 0))
        first, last, err = mean(0, 25, 0), mean(steps - 25, steps, 0), mean(steps - 50, steps, 1)
        m = re.findall(r"\(500 images, centre crop\): top-1 error ([\d.]+)%", log)
        val = float(m[-1]) if m else float("nan")
        dead = ""
    else:
        loss = [float(x["loss"]) for x in r]
        e = [float(x["top1_err"]) for x in r]
        assert len(loss) == steps, (base, len(loss))
        first, last, err = sum(loss[:25]) / 25, sum(loss[-25:]) / 25, sum(e[-50:]) / 50
        m = re.findall(r"eval at stop: 500 validation images \(centre crop\): top-1 error ([\d.]+)%", log)
        val = float(m[-1]) if m else float("nan")
        d = re.findall(r"fc6 dead at init: (\d+) of (\d+)", log)
        dead = f"{100 * int(d[0][0]) / int(d[0][1]):.1f}" if d else ""
    rows.append(dict(run=name, seed=int(seed), loss_1_25=round(first, 4), loss_last25=round(last, 4),
                     train_err_last50=round(100 * err, 2), val_err_500=val, fc6_dead_init_pct=dead))
with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["run"])
    w.writeheader()
    w.writerows(rows)
order = ["pt-caffe", "pt-caffe-bug255", "pt-caffe-oldbias", "pt-caffe-oldbias-bug255", "c-caffe", "c-caffe-old",
         "pt-paper", "c-paper"]
what = {"pt-caffe": "PyTorch, caffe (new biases), lighting fixed",
        "pt-caffe-bug255": "PyTorch, caffe (new biases), lighting x255 (the old bug)",
        "pt-caffe-oldbias": "PyTorch, caffe with the old biases, lighting fixed",
        "pt-caffe-oldbias-bug255": "PyTorch, caffe with the old biases, lighting x255 (as the invalid rows)",
        "c-caffe": "C, caffe (new biases)", "c-caffe-old": "C, caffe with the old biases (9653b8f's recipe)",
        "pt-paper": "PyTorch, paper recipe, lighting fixed", "c-paper": "C, paper recipe"}
lines = [f"| run | seeds | loss, steps 1-25 | loss, steps {steps - 24}-{steps} | train top-1 error, steps "
         f"{steps - 49}-{steps} | val top-1 error, 500 images, after step {steps} |", "| --- | --- | --- | --- | --- | --- |"]
for name in order:
    rs = sorted((x for x in rows if x["run"] == name), key=lambda x: x["seed"])
    if not rs:
        continue
    def cell(k, fmt):
        vals = [x[k] for x in rs]
        avg = sum(vals) / len(vals)
        return (fmt.format(avg) + " (" + ", ".join(fmt.format(v) for v in vals) + ")") if len(vals) > 1 else fmt.format(avg)
    lines.append(f"| {what[name]} | {', '.join(str(x['seed']) for x in rs)} | {cell('loss_1_25', '{:.3f}')} | "
                 f"{cell('loss_last25', '{:.3f}')} | {cell('train_err_last50', '{:.1f}%')} | {cell('val_err_500', '{:.1f}%')} |")
fc6 = os.path.join(out, "fc6_dead.csv")
if os.path.exists(fc6):
    with open(fc6) as f:
        fr = list(csv.DictReader(f))
    lines += ["", "| recipe | lighting | fc6 units 0 for all images of the first batch, at initialisation (per seed) |",
              "| --- | --- | --- |"]
    for rec in ("paper", "caffe-old", "caffe"):
        for sc in ("1", "255"):
            xs = [x for x in fr if x["recipe"] == rec and x["lighting_scale"] == sc]
            if xs:
                lines.append(f"| {rec} | {'fixed' if sc == '1' else 'x255 (old bug)'} | " + ", ".join(
                    f"{100 * int(x['dead_units']) / int(x['units']):.1f}% (seed {x['seed']}, {x['batch']} images)" for x in xs) + " |")
open(os.path.join(out, "table.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
