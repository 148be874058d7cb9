#!/usr/bin/env bash
# Trains the shipped model and the comparison models on Flickr8k train, validating on dev, then
# prints the comparison table on dev. Long (minutes to an hour per model on 2 CPU cores): a
# script, not a test.
#   bash scripts/train_flickr8k.sh [MODEL[:EPOCHS[:random]]...]   (default: minilm lstm transformer bow)
# EPOCHS defaults to 50; ":random" starts a word-level model's embeddings from random values
# instead of MiniLM's (the run is then named MODEL-random). Environment: FLICKR8K (data folder),
# OUT (runs), CACHE_DIR (feature cache), PHOTOSEARCH (the command).
# The README's rows: bash scripts/train_flickr8k.sh minilm lstm:30 transformer:12 bow:20 bow:50:random
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${FLICKR8K:-../shared/data/flickr8k}
OUT=${OUT:-runs}
PS=${PHOTOSEARCH:-.venv/bin/photosearch}
cache=(); [ -n "${CACHE_DIR:-}" ] && cache=(--cache-dir "$CACHE_DIR")
specs=("${@:-minilm lstm transformer bow}")
for spec in ${specs[@]}; do
    IFS=: read -r model epochs init <<< "$spec"
    epochs=${epochs:-50}
    name=$model; [ "$model" = minilm ] && name=default
    extra=()
    if [ "${init:-}" = random ]; then name=$model-random; extra=(--word-init random); fi
    /usr/bin/time -f "$name: %e s wall, %M KB peak" "$PS" train \
        --captions-json "$DATA/train.json" --image-root "$DATA/images" --val-captions-json "$DATA/dev.json" \
        --model-type "$model" --batch-size 256 --epochs "$epochs" --seed 0 "${cache[@]}" "${extra[@]}" \
        --checkpoint-dir "$OUT/checkpoints" --results-dir "$OUT/results" --name "$name"
done
"$PS" evaluate --captions-json "$DATA/dev.json" --image-root "$DATA/images" \
    $(for c in "$OUT"/checkpoints/*.safetensors; do echo --checkpoint "$c"; done)
