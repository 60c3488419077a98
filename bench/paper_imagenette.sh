#!/usr/bin/env bash
# paper_imagenette.sh: the paper's experiments with `alexnet` on Imagenette (docs/RESULTS.md), one
# run at a time (a 2-core machine is full with one), every step resumable: rerun the script after a
# stop and finished runs are read back, unfinished ones continue from their checkpoints.
#   usage: bench/paper_imagenette.sh EPOCHS [STEP...]
# Steps (default: all, in this order):
#   ablate     `alexnet experiment ablate`: alexnet, alexnet-nolrn, alexnet-pool2, alexnet-1tower and
#              alexnet without PCA lighting, seed 1, EPOCHS each, constant rate 0.01, caffe recipe
#   ensemble   `alexnet eval --crops 10` of the ablation's alexnet, alexnet-nolrn and alexnet-pool2
#              (three different networks, as the paper's ensembles mixed networks) and of each alone
#   finetune   the paper's pre-training then fine-tuning (section 6), on halves of Imagenette:
#              alexnet trained EPOCHS on classes 0-4 (A); then classes 5-9 (B) for EPOCHS twice:
#              from A's weights (`--init`, fc8 `--reset`) and from scratch; both validated on B
#   peer       C beside the PyTorch peer, `bench/imagenette_runs.sh caffe|paper EPOCHS`
# Outputs: $OUT (default runs/paper-imagenette/: runs, shards, logs STEP.log); the tables go to stdout and
# STEP.log. DATA (default ../shared/data/imagenette) can point at any ImageNet-layout folder;
# LIMIT_TRAIN / LIMIT_VAL (default all) make a quick smoke run of the whole script; BIN (default
# ./build/alexnet) runs another binary, e.g. a copy, so that rebuilding does not touch a long run.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:?usage: bench/paper_imagenette.sh EPOCHS [ablate ensemble finetune peer]}
shift
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(ablate ensemble finetune peer)
data=${DATA:-../shared/data/imagenette}
out=${OUT:-runs/paper-imagenette}
bin=${BIN:-./build/alexnet}
limits=()
[ -n "${LIMIT_TRAIN:-}" ] && limits+=(--limit-train "$LIMIT_TRAIN")
[ -n "${LIMIT_VAL:-}" ] && limits+=(--limit-val "$LIMIT_VAL")
evlimit=()
[ -n "${LIMIT_VAL:-}" ] && evlimit+=(--limit "$LIMIT_VAL")
mkdir -p "$out"
[ -x "$bin" ] || make
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u +%F)"

# shard of an image folder, made once (prep writes FILE.tmp and renames it when complete)
shard() { [ -f "$2" ] || "$bin" prep --data "$1" --out "$2" --quiet; }

# a folder of some classes of $data: train/ and val/ with symlinks to the class folders
subset() { # subset DIR FIRST LAST (class indices in classes.txt order, inclusive)
    local dir=$1 first=$2 last=$3 i=0 c
    [ -d "$dir" ] && return 0
    mkdir -p "$dir.tmp/train" "$dir.tmp/val"
    for c in $(ls "$data/train" | sort); do
        if [ $i -ge "$first" ] && [ $i -le "$last" ]; then
            ln -s "$(realpath "$data/train/$c")" "$dir.tmp/train/$c"
            ln -s "$(realpath "$data/val/$c")" "$dir.tmp/val/$c"
        fi
        i=$((i + 1))
    done
    mv "$dir.tmp" "$dir"
}

# train RUN_DIR ARGS...: a training run, continued from its checkpoint when it has one
train() {
    local dir=$1
    shift
    local resume=()
    [ -f "$dir/checkpoint.safetensors" ] && resume=(--resume "$dir/checkpoint.safetensors")
    if [ -f "$dir/log.csv" ] && [ "$(tail -1 "$dir/log.csv" | cut -d, -f1)" = "$epochs" ]; then
        echo "$dir: done before ($epochs epochs)"
        return 0
    fi
    "$bin" train --model alexnet --epochs "$epochs" --out "$dir" --quiet "${limits[@]}" "$@" "${resume[@]}"
}

# best validation top-1 / top-5 error (%) of a run, and its epoch
best() {
    awk -F, 'NR > 1 && ($6 < b || b == "") { b = $6; f = $7; e = $1 } END { printf "%.2f%% / %.2f%% (epoch %d)", 100 * b, 100 * f, e }' "$1/log.csv"
}

step_ablate() {
    shard "$data" "$out/imagenette.shard"
    "$bin" experiment ablate --data "$out/imagenette.shard" --epochs "$epochs" --lighting-off \
        --out "$out/ablate" "${limits[@]}"
}

step_ensemble() {
    local a=$out/ablate
    for m in alexnet alexnet-nolrn alexnet-pool2; do
        [ -f "$a/$m-seed1/best.safetensors" ] || { echo "ensemble: run the ablate step first ($a/$m-seed1)" >&2; return 1; }
    done
    "$bin" eval --crops 10 --data "$out/imagenette.shard" "${evlimit[@]}" \
        --model alexnet --weights "$a/alexnet-seed1/best.safetensors" \
        --model alexnet-nolrn --weights "$a/alexnet-nolrn-seed1/best.safetensors" \
        --model alexnet-pool2 --weights "$a/alexnet-pool2-seed1/best.safetensors"
}

step_finetune() {
    subset "$out/classes-a" 0 4
    subset "$out/classes-b" 5 9
    shard "$out/classes-a" "$out/classes-a.shard"
    shard "$out/classes-b" "$out/classes-b.shard"
    train "$out/ft-pretrain-a" --data "$out/classes-a.shard" --seed 1
    [ -f "$out/ft-pretrain-a/best.safetensors" ] || { echo "finetune: no pre-trained weights" >&2; return 1; }
    local init=()
    [ -f "$out/ft-b-finetuned/checkpoint.safetensors" ] ||
        init=(--init "$out/ft-pretrain-a/best.safetensors" --reset fc8)
    train "$out/ft-b-finetuned" --data "$out/classes-b.shard" --seed 2 "${init[@]}"
    train "$out/ft-b-scratch" --data "$out/classes-b.shard" --seed 2
    echo
    echo "| run (classes 5-9 of Imagenette, $epochs epochs) | best validation top-1 / top-5 error |"
    echo "| --- | --- |"
    echo "| pre-trained on classes 0-4 ($epochs epochs), then fine-tuned | $(best "$out/ft-b-finetuned") |"
    echo "| from scratch | $(best "$out/ft-b-scratch") |"
    echo "(pre-training itself, on classes 0-4: $(best "$out/ft-pretrain-a"))"
}

step_peer() {
    bench/imagenette_runs.sh caffe "$epochs" "$data" "$out/imagenette.shard"
    bench/imagenette_runs.sh paper "$epochs" "$data" "$out/imagenette.shard"
}

for s in "${steps[@]}"; do
    case $s in
    ablate | ensemble | finetune | peer) ;;
    *) echo "paper_imagenette.sh: unknown step '$s' (ablate, ensemble, finetune, peer)" >&2; exit 2 ;;
    esac
    echo "== $s ($(date -u +%T))"
    "step_$s" 2>&1 | tee "$out/$s.log"
done
