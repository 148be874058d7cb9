"""Refit a checkpoint's ConSE part (class-name table, top-T, weight, reference covariances).

    .venv/bin/python scripts/refit_concepts.py CKPT --weight 0.25 --top-t 100 \\
        --captions-json ../shared/data/flickr8k/dev.json --image-root ../shared/data/flickr8k/images

The trained heads are untouched; the covariances come from the given (validation) photos, as
`photosearch train` does at the end of training.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from photosearch.miniclip.checkpoint import load_checkpoint, save_checkpoint
from photosearch.miniclip.export import export_model
from photosearch.miniclip.data import load_captions
from photosearch.miniclip.features import FeatureCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--weight", type=float, required=True)
    parser.add_argument("--top-t", type=int, required=True)
    parser.add_argument("--captions-json", required=True)
    parser.add_argument("--image-root", required=True)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    model = load_checkpoint(args.checkpoint)
    if not model.uses_concepts:
        raise SystemExit(f"{args.checkpoint} has no ConSE part (trained with --concept-weight 0)")
    model.config = replace(model.config, concept_weight=args.weight, concept_top_t=args.top_t)
    data = load_captions(args.captions_json, args.image_root)
    features = FeatureCache(model, args.cache_dir).image_features(data.paths, views=1)[:, 0]
    model.build_concept_table()
    model.calibrate(features)
    info = {**model.info, "concepts": {"weight": args.weight, "top_t": args.top_t, "calibrated_on": args.captions_json}}
    print(save_checkpoint(model, args.checkpoint, info))
    print(export_model(model, args.checkpoint)["fingerprint"])  # the ONNX towers must follow


if __name__ == "__main__":
    main()
