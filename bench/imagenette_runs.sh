#!/usr/bin/env bash
# imagenette_runs.sh: AlexNet from scratch on Imagenette, the C trainer and its PyTorch peer
# (bench/train_pytorch.py) with the same recipe, one run after the other (never concurrently on a
# small machine), logs in bench/results/. Resumable: rerun with more epochs and each run continues
# from its checkpoint.
#   usage: bench/imagenette_runs.sh RECIPE EPOCHS [DATA] [SHARD]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:?recipe: paper or caffe}; epochs=${2:?epochs}
data=${3:-../shared/data/imagenette}; shard=${4:-runs/imagenette.shard}
[ -f "$shard" ] || ./build/alexnet prep --data "$data" --out "$shard"
out=runs/imagenette-c-$recipe
resume=(); [ -f "$out/checkpoint.safetensors" ] && resume=(--resume "$out/checkpoint.safetensors")
./build/alexnet train --model alexnet --recipe "$recipe" --data "$shard" --epochs "$epochs" --out "$out" "${resume[@]}"
cp "$out/log.csv" "bench/results/c_$recipe.csv"
pt=runs/pytorch_$recipe/checkpoint.pt
presume=(); [ -f "$pt" ] && presume=(--resume "$pt")
/usr/bin/python3 bench/train_pytorch.py --data "$data" --recipe "$recipe" --epochs "$epochs" --threads "$(nproc)" \
    --log "bench/results/pytorch_$recipe.csv" --checkpoint "$pt" "${presume[@]}"
