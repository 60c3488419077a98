#!/usr/bin/env bash
# imagenette_runs.sh: AlexNet from scratch on Imagenette, the C trainer and its PyTorch peer
# (bench/train_pytorch.py) with the same recipe, one run after the other (never concurrently on a
# small machine), logs in bench/results/. Resumable: rerun with more epochs and each run continues
# from its checkpoint.
# PyTorch checkpoints written before 2026-12-02 (the peer's PCA lighting was 255 times too strong,
# and its caffe recipe had the old biases; docs/RESULTS.md) are not resumed: they are moved aside
# to checkpoint.pt.invalid-255x-lighting and the PyTorch run starts again (overwriting its CSV).
# C checkpoints of --recipe caffe written before 2026-12-02 hold the old caffe biases (conv2/4/5
# 1); resumed with today's build they continue with the new bias learning rate and decay: remove
# runs/imagenette-c-caffe to start the new recipe from scratch.
# Short runs (150 steps) that separate lighting and biases: bench/short_runs.sh.
# BIN (default ./build/alexnet) runs another binary, e.g. a copy, so that rebuilding does not touch a
# long run. The peer's OpenMP threads wait as ours do (GOMP_SPINCOUNT=1000 unless the environment
# sets a policy): with libgomp's default spinning, a PyTorch run beside any other busy process fell
# to a few percent of its speed on a 2-core machine.
#   usage: bench/imagenette_runs.sh RECIPE EPOCHS [DATA] [SHARD]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:?recipe: paper or caffe}; epochs=${2:?epochs}
data=${3:-../shared/data/imagenette}; shard=${4:-runs/imagenette.shard}
bin=${BIN:-./build/alexnet}
[ -f "$shard" ] || "$bin" prep --data "$data" --out "$shard"
out=runs/imagenette-c-$recipe
resume=(); [ -f "$out/checkpoint.safetensors" ] && resume=(--resume "$out/checkpoint.safetensors")
"$bin" train --model alexnet --recipe "$recipe" --data "$shard" --epochs "$epochs" --out "$out" "${resume[@]}"
cp "$out/log.csv" "bench/results/c_$recipe.csv"
# the peer: the pip PyTorch of bench/pytorch_venv.sh where it is, else Debian's (PYTHON overrides)
py=${PYTHON:-runs/pytorch-venv/bin/python}
[ -x "$py" ] || py=/usr/bin/python3
echo "PyTorch peer: $py ($("$py" -c 'import torch; print("torch", torch.__version__)'))"
pt=runs/pytorch_$recipe/checkpoint.pt
if [ -f "$pt" ] && ! "$py" -c 'import sys, torch; sys.exit("lighting_scale" not in torch.load(sys.argv[1], map_location="cpu", weights_only=False)["args"])' "$pt"; then
    echo "$pt: written before the lighting fix of 2026-12-02 (invalid); moved aside, starting again" >&2
    mv "$pt" "$pt.invalid-255x-lighting"
fi
presume=(); [ -f "$pt" ] && presume=(--resume "$pt")
[ -n "${GOMP_SPINCOUNT:-}${OMP_WAIT_POLICY:-}" ] || export GOMP_SPINCOUNT=1000
"$py" bench/train_pytorch.py --data "$data" --recipe "$recipe" --epochs "$epochs" --threads "$(nproc)" \
    --log "bench/results/pytorch_$recipe.csv" --checkpoint "$pt" "${presume[@]}"
