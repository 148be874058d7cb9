"""Training levers for MiniCLIP, measured side by side on cached features (Flickr8k train, dev as
validation): each variant trains the default model's heads with the shipped optimiser settings
but for the epochs given, and reports the best epoch's dev figures without the ConSE fusion
(`photosearch evaluate --concept-weight 0` ranks the same way), plus the colour queries' R@1.

    .venv/bin/python -m benchmarks.levers [--epochs 15] [--views 1] [--only base,nodecay,hardneg]

A script, not a test: it needs Flickr8k and its feature cache (computed when missing: minutes).
Variants: base (the shipped recipe), nodecay (no weight decay on biases, norms and the
temperature), hardneg (+ a VSE++ hardest-negative hinge, weight 0.5), nodecay+hardneg.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from benchmarks.training import FLICKR8K

VARIANTS = {
    "base": {},
    "nodecay": {"decay_all": False},
    "hardneg": {"hard_negative_weight": 0.5},
    "nodecay+hardneg": {"decay_all": False, "hard_negative_weight": 0.5},
}


def run_variant(name: str, overrides: dict, epochs: int, views: int, data) -> dict:
    import torch

    from photosearch.miniclip.colour_words import colour_query_rows
    from photosearch.miniclip.config import PRESETS, TrainConfig
    from photosearch.miniclip.data import epoch_batches
    from photosearch.miniclip.loss import ClipLoss
    from photosearch.miniclip.metrics import retrieval_metrics, summarise, text_to_image_ranks
    from photosearch.miniclip.model import MiniCLIP
    from photosearch.miniclip.train import fit

    train, val, train_feats, val_feats, train_sent, val_sent = data
    cfg = replace(TrainConfig(epochs=epochs, batch_size=256, seed=0, views=views,
                              warmup_epochs=max(1, epochs // 10)), **overrides)
    torch.manual_seed(cfg.seed)
    model = MiniCLIP(replace(PRESETS["default"], concept_weight=0.0))
    loss = ClipLoss(cfg.hard_negative_weight, cfg.hard_negative_margin)

    def batches(epoch: int):
        rng = np.random.default_rng([cfg.seed, max(epoch, 0)])
        for rows in epoch_batches(train.caption_image, cfg.batch_size, rng):
            if epoch < 0:
                yield None
                continue
            images = torch.as_tensor(train.caption_image[rows])
            chosen = torch.as_tensor(rng.integers(0, views, len(rows)))
            yield train_feats[images, chosen], train_sent[rows]

    def similarity(m) -> np.ndarray:
        with torch.inference_mode():
            img = torch.cat([m.encode_image(val_feats[i:i + 512]) for i in range(0, len(val_feats), 512)])
            txt = torch.cat([m.encode_text(val_sent[i:i + 512]) for i in range(0, len(val_sent), 512)])
        return (txt @ img.T).numpy()

    def validate(m):
        metrics = retrieval_metrics(similarity(m), val.caption_image)
        return metrics["mean_recall"], metrics

    start = time.perf_counter()
    result = fit(model, batches, lambda m, b: loss(*m(*b)), validate, cfg)
    sim = similarity(model)
    metrics = retrieval_metrics(sim, val.caption_image)
    colour = colour_query_rows(val.captions)
    colour_r1 = summarise(text_to_image_ranks(sim[colour], val.caption_image[colour]))["R@1"]
    return {"name": name, "t2i": metrics["t2i"], "i2t": metrics["i2t"], "colour_R@1": colour_r1,
            "best_epoch": result.best_epoch, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flickr8k", default=FLICKR8K)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--views", type=int, default=1)
    parser.add_argument("--only", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    from pathlib import Path

    from photosearch.miniclip.config import PRESETS
    from photosearch.miniclip.data import load_captions
    from photosearch.miniclip.features import FeatureCache
    from photosearch.miniclip.model import MiniCLIP

    root = Path(args.flickr8k)
    train = load_captions(root / "train.json", root / "images", check_images=False)
    val = load_captions(root / "dev.json", root / "images", check_images=False)
    model = MiniCLIP(PRESETS["default"]).eval()
    cache = FeatureCache(model)
    tag = "all-MiniLM-L6-v2:eval"
    data = (train, val, cache.image_features(train.paths, views=args.views), cache.image_features(val.paths)[:, 0],
            cache.sentence_embeddings(train.captions, model.text_encoder.sentence_embeddings, tag),
            cache.sentence_embeddings(val.captions, model.text_encoder.sentence_embeddings, tag))
    print(f"{args.epochs} epochs, {args.views} view(s), batch 256, seed 0; dev, unfused", flush=True)
    print(f"{'variant':<18}{'t2i R@1':>8}{'R@5':>6}{'R@10':>6}{'i2t R@1':>8}{'R@10':>6}{'colour R@1':>11}{'best':>5}{'s':>6}", flush=True)
    for name in args.only.split(","):
        r = run_variant(name, VARIANTS[name], args.epochs, args.views, data)
        print(f"{name:<18}{r['t2i']['R@1']:>8.1f}{r['t2i']['R@5']:>6.1f}{r['t2i']['R@10']:>6.1f}{r['i2t']['R@1']:>8.1f}"
              f"{r['i2t']['R@10']:>6.1f}{r['colour_R@1']:>11.1f}{r['best_epoch']:>5}{r['seconds']:>6.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
