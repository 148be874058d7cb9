"""Figures written to the results folder: training curves, retrieval examples, metric comparison."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def training_curves(history: list, path: Path) -> None:
    epochs = [h.epoch for h in history]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h.train_loss for h in history], marker=".")
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="InfoNCE")
    for key in ("R@1", "R@5", "R@10"):
        ax_val.plot(epochs, [h.val["t2i"][key] for h in history], marker=".", label=f"text→image {key}")
    ax_val.set(title="validation", xlabel="epoch", ylabel="%")
    ax_val.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def retrieval_examples(data, sim: np.ndarray, path: Path, n_queries: int = 5, k: int = 5, seed: int = 0) -> None:
    """Query captions (wrapped, whole) with their top-k images at their own aspect ratio; the
    right image is framed in green."""
    import textwrap

    rng = np.random.default_rng(seed)
    queries = rng.choice(len(data.captions), size=min(n_queries, len(data.captions)), replace=False)
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(2.2 * (k + 1), 2.4 * len(queries)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.3] + [1] * k})
    for row, q in enumerate(queries):
        text_ax = axes[row, 0]
        text_ax.axis("off")
        text_ax.text(0.0, 0.5, textwrap.fill(data.captions[q], width=24), fontsize=8, va="center", ha="left",
                     transform=text_ax.transAxes, wrap=True)
        top = np.argsort(-sim[q])[:k]
        for col, img in enumerate(top, start=1):
            ax = axes[row, col]
            with Image.open(data.paths[img]) as im:
                thumb = im.convert("RGB")
                thumb.thumbnail((240, 240))
            ax.imshow(thumb)  # aspect "equal": the photo keeps its shape, the frame hugs it
            hit = img == data.caption_image[q]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("green" if hit else "lightgrey")
                spine.set_linewidth(4 if hit else 1)
            ax.set_title(f"{sim[q, img]:.3f}" + (" ✓" if hit else ""), fontsize=8)
        for col in range(len(top) + 1, k + 1):
            axes[row, col].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def metrics_comparison(rows: dict[str, dict], path: Path) -> None:
    """Grouped bars of text→image R@1/5/10 for each model and baseline."""
    keys = ("R@1", "R@5", "R@10")
    names = list(rows)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, name in enumerate(names):
        values = [rows[name]["t2i"][k] for k in keys]
        ax.bar(np.arange(len(keys)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(keys)) + width * (len(names) - 1) / 2, keys)
    ax.set(ylabel="%", title="text→image retrieval")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
