"""Several views of a photo at index time: the whole photo alone against the mean of the whole
photo and its mirror image, on Flickr8k dev, through the checkpoint's own search vectors.

    .venv/bin/python -m benchmarks.index_views [--checkpoint FILE ...] [--flickr8k DIR] [--cache-dir DIR]

Reads views 0 (whole) and 1 (whole, mirrored) from the feature cache (computed when missing),
so it costs a second forward pass per photo the first time. Prints text→image and image→text
R@1 / R@10 and the colour queries' R@1 for each checkpoint and view rule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.training import FLICKR8K


def averaged_search_vectors(model, features) -> np.ndarray:
    """features (N, V, C) -> (N, D): the mean over views of the MiniCLIP embedding, renormalised,
    beside the mean of the concept vectors (what an index that averages views would store)."""
    import torch
    from torch.nn import functional as F

    from photosearch.miniclip.model import MiniCLIP

    assert isinstance(model, MiniCLIP)
    out = []
    with torch.inference_mode():
        for start in range(0, len(features), 64):
            chunk = features[start:start + 64]  # (n, V, C)
            n, v, c = chunk.shape
            flat = chunk.reshape(n * v, c)
            clip = F.normalize(model.encode_image(flat).reshape(n, v, -1).mean(1), dim=-1)  # (n, E)
            parts = [clip]
            if model.uses_concepts:
                parts.append(model.concept_vectors(flat).reshape(n, v, -1).mean(1))
            out.append(torch.cat(parts, dim=-1).float().numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", type=Path, default=None)
    parser.add_argument("--flickr8k", type=Path, default=FLICKR8K)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    from photosearch.miniclip.checkpoint import default_checkpoint_path, load_checkpoint
    from photosearch.miniclip.colour_words import colour_query_rows
    from photosearch.miniclip.data import load_captions
    from photosearch.miniclip.evaluation import text_search_vectors
    from photosearch.miniclip.features import FeatureCache
    from photosearch.miniclip.metrics import retrieval_metrics, summarise, text_to_image_ranks

    data = load_captions(args.flickr8k / "dev.json", args.flickr8k / "images")
    colour = colour_query_rows(data.captions)
    print(f"{'checkpoint':<24}{'views':<16}{'t2i R@1':>9}{'R@10':>7}{'i2t R@1':>9}{'R@10':>7}{'colour R@1':>12}")
    for path in args.checkpoint or [default_checkpoint_path()]:
        model = load_checkpoint(path)
        feats = FeatureCache(model, args.cache_dir).image_features(data.paths, views=2)  # (N, 2, C)
        texts = text_search_vectors(model, data.captions)
        for label, views in (("whole", feats[:, :1]), ("whole + mirror", feats)):
            sim = texts @ averaged_search_vectors(model, views).T
            m = retrieval_metrics(sim, data.caption_image)
            c = summarise(text_to_image_ranks(sim[colour], data.caption_image[colour]))
            print(f"{Path(path).stem:<24}{label:<16}{m['t2i']['R@1']:>9.1f}{m['t2i']['R@10']:>7.1f}"
                  f"{m['i2t']['R@1']:>9.1f}{m['i2t']['R@10']:>7.1f}{c['R@1']:>12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
