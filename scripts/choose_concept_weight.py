"""Pick the ConSE fusion weight: evaluate one checkpoint on Flickr8k dev and the demo photos.

    .venv/bin/python scripts/choose_concept_weight.py --checkpoint checkpoints/default.safetensors

Only dev and the demo photos are used (the Flickr8k test split stays held out). Prints text→image
R@1/R@10 for each weight; the rule is: the largest demo R@1 whose dev R@1 stays within 1 point of
the weight-0 model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from photosearch.miniclip.checkpoint import load_checkpoint
from photosearch.miniclip.data import load_captions
from photosearch.miniclip.evaluation import image_search_vectors, text_search_vectors
from photosearch.miniclip.features import FeatureCache
from photosearch.miniclip.metrics import retrieval_metrics

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "flickr8k-dev": (ROOT.parent / "shared/data/flickr8k/dev.json", ROOT.parent / "shared/data/flickr8k/images"),
    "demo-photos": (ROOT / "examples/photos/captions.json", ROOT / "examples/photos/images"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints/default.safetensors"))
    parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.4,0.5,0.7,1.0")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = load_checkpoint(args.checkpoint)
    cache = FeatureCache(model)
    weights = [float(w) for w in args.weights.split(",")]
    table = {}
    for name, (captions, images) in SETS.items():
        data = load_captions(captions, images)
        image_vecs = image_search_vectors(model, data, cache)
        for w in weights:
            sim = text_search_vectors(model, data.captions, concept_weight=w) @ image_vecs.T
            table.setdefault(w, {})[name] = retrieval_metrics(sim, data.caption_image)["t2i"]
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print(f"{'weight':>7} | {'dev R@1':>8} {'dev R@10':>9} | {'demo R@1':>9} {'demo R@10':>10}")
    for w, row in table.items():
        d, m = row["flickr8k-dev"], row["demo-photos"]
        print(f"{w:>7.2f} | {d['R@1']:>8.1f} {d['R@10']:>9.1f} | {m['R@1']:>9.1f} {m['R@10']:>10.1f}")
    base = table[weights[0]]["flickr8k-dev"]["R@1"]
    allowed = [w for w in weights if table[w]["flickr8k-dev"]["R@1"] >= base - 1.0]
    best = max(allowed, key=lambda w: table[w]["demo-photos"]["R@1"])
    print(f"chosen: {best} (largest demo R@1 with dev R@1 within 1 point of weight {weights[0]})")


if __name__ == "__main__":
    main()
