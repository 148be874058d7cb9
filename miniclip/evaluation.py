"""Evaluation through the same search vectors the library ranks with: what users get."""

from __future__ import annotations

import numpy as np
import torch

from photosearch.miniclip.data import CaptionSet
from photosearch.miniclip.features import FeatureCache
from photosearch.miniclip.metrics import retrieval_metrics


def image_search_vectors(model, data: CaptionSet, cache: FeatureCache | None, batch_size: int = 64) -> np.ndarray:
    """(N_images, D) search vectors, from cached centre-view features when the backbone is frozen."""
    if cache is not None and not model.config.finetune_backbone:
        feats = cache.image_features(data.paths, views=1)[:, 0]  # (N, C)
        device = model.logit_scale.device
        return np.concatenate([
            model.search_vectors_from_features(feats[i:i + batch_size].to(device)).float().cpu().numpy()
            for i in range(0, len(feats), batch_size)
        ])
    from PIL import Image

    out = []
    for i in range(0, len(data.paths), batch_size):
        images = []
        for p in data.paths[i:i + batch_size]:
            with Image.open(p) as im:
                images.append(model.image_transform(im.convert("RGB")))
        out.append(model.encode_search_images(torch.stack(images)))
    return np.concatenate(out)


def text_search_vectors(model, captions: list[str], concept_weight: float | None = None, batch_size: int = 256) -> np.ndarray:
    return np.concatenate([
        model.encode_search_texts(captions[i:i + batch_size], concept_weight=concept_weight)
        for i in range(0, len(captions), batch_size)
    ])


def similarity(model, data: CaptionSet, cache: FeatureCache | None, concept_weight: float | None = None) -> np.ndarray:
    """(N_captions, N_images) scores, exactly as `photosearch query` would rank."""
    images = image_search_vectors(model, data, cache)
    texts = text_search_vectors(model, data.captions, concept_weight)
    return texts @ images.T


def evaluate(model, data: CaptionSet, cache: FeatureCache | None = None, concept_weight: float | None = None) -> tuple[dict, np.ndarray]:
    model.eval()
    sim = similarity(model, data, cache, concept_weight)
    return retrieval_metrics(sim, data.caption_image), sim
