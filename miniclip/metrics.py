"""Retrieval metrics: Recall@K, mean reciprocal rank and median rank, both directions."""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10)


def summarise(ranks: np.ndarray) -> dict[str, float]:
    """1-based ranks -> R@1/5/10 (percent), MRR, median rank."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {f"R@{k}": float((ranks <= k).mean() * 100) for k in KS}
    out["MRR"] = float((1.0 / ranks).mean())
    out["MedR"] = float(np.median(ranks))
    return out


def text_to_image_ranks(sim: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """sim (N_captions, N_images); a caption's answer is its image. Ties count against the answer."""
    correct = sim[np.arange(sim.shape[0]), caption_image][:, None]  # (Q, 1)
    return (sim > correct).sum(1) + (sim == correct).sum(1)  # rank of the answer among ties: last


def image_to_text_ranks(sim: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """A hit is any of the image's captions: rank of its best-scored caption."""
    sim_t = sim.T  # (N_images, N_captions)
    own = caption_image[None, :] == np.arange(sim_t.shape[0])[:, None]  # (N_images, N_captions)
    best_own = np.where(own, sim_t, -np.inf).max(1, keepdims=True)  # (N_images, 1)
    return (np.where(own, -np.inf, sim_t) >= best_own).sum(1) + 1


def retrieval_metrics(sim: np.ndarray, caption_image: np.ndarray) -> dict[str, dict[str, float]]:
    caption_image = np.asarray(caption_image)
    t2i = summarise(text_to_image_ranks(sim, caption_image))
    i2t = summarise(image_to_text_ranks(sim, caption_image))
    return {"t2i": t2i, "i2t": i2t, "mean_recall": float(np.mean([t2i[f"R@{k}"] for k in KS] + [i2t[f"R@{k}"] for k in KS]))}


def random_baseline(caption_image: np.ndarray, n_images: int, seed: int = 0) -> dict:
    """Metrics of random scores: what chance gives on this set."""
    sim = np.random.default_rng(seed).standard_normal((len(caption_image), n_images))
    return retrieval_metrics(sim, np.asarray(caption_image))
