#!/usr/bin/env bash
# Trains the shipped model and the comparison models on Flickr8k train, validating on dev, then
# prints the comparison table on dev. Long (tens of minutes on 2 CPU cores): a script, not a test.
#   bash scripts/train_flickr8k.sh [MODEL...]    (default: minilm lstm transformer bow)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${FLICKR8K:-../shared/data/flickr8k}
OUT=${OUT:-runs}
PS=${PHOTOSEARCH:-.venv/bin/photosearch}
models=("${@:-minilm lstm transformer bow}")
for model in ${models[@]}; do
    name=$model; [ "$model" = minilm ] && name=default
    /usr/bin/time -f "$name: %e s wall, %M KB peak" "$PS" train \
        --captions-json "$DATA/train.json" --image-root "$DATA/images" --val-captions-json "$DATA/dev.json" \
        --model-type "$model" --batch-size 256 --epochs 50 --seed 0 \
        --checkpoint-dir "$OUT/checkpoints" --results-dir "$OUT/results" --name "$name"
done
"$PS" evaluate --captions-json "$DATA/dev.json" --image-root "$DATA/images" \
    $(for c in "$OUT"/checkpoints/*.safetensors; do echo --checkpoint "$c"; done)
