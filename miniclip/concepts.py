"""ConSE concept vectors (Norouzi et al., 2014): open-vocabulary knowledge from the ImageNet head.

A photo's concept vector is the probability-weighted mean of the sentence embeddings of its top-T
ImageNet class names; a query's is its own sentence embedding. Their cosine is the concept score,
which the search vectors fuse with MiniCLIP's score.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


CLASS_PROMPT = "a photo of a {}."  # chosen on Flickr8k dev and the demo photos (README)


def imagenet_class_names() -> list[str]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


def concept_vectors(logits: torch.Tensor, class_table: torch.Tensor, top_t: int) -> torch.Tensor:
    """(B, 1000) class logits, (1000, S) class-name embeddings -> (B, S) unit concept vectors."""
    probs = logits.softmax(dim=-1)  # (B, 1000)
    top = probs.topk(top_t, dim=-1)
    weights = top.values / top.values.sum(-1, keepdim=True)  # (B, T)
    mixed = (weights.unsqueeze(-1) * class_table[top.indices]).sum(1)  # (B, T, S) -> (B, S)
    return F.normalize(mixed, dim=-1)


def score_std(queries: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """Standard deviation of q·v over reference photos v, per query: sqrt(q^T C q). (B, D) -> (B,)"""
    return torch.einsum("bd,de,be->b", queries, covariance, queries).clamp(min=1e-12).sqrt()


def covariance(vectors: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (D, D) covariance of reference photo vectors."""
    centred = vectors - vectors.mean(0, keepdim=True)
    return centred.T @ centred / max(vectors.shape[0] - 1, 1)
