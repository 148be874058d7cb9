"""Symmetric InfoNCE (the CLIP loss), in small pieces."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ClipLoss(nn.Module):
    """Cross-entropy over image->text and text->image logits; row i's positive is column i.

    The batch sampler guarantees one caption per image in a batch, so the diagonal is the only
    positive. With `hard_negative_weight` > 0 a VSE++ term (Faghri et al., 2018) is added: for
    each row and column, a hinge on the hardest negative's cosine against the positive's.
    """

    def __init__(self, hard_negative_weight: float = 0.0, margin: float = 0.2):
        super().__init__()
        self.hard_negative_weight, self.margin = hard_negative_weight, margin

    def get_logits(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor):
        logits_per_image = logit_scale * image_emb @ text_emb.T  # (B, B)
        return logits_per_image, logits_per_image.T

    def get_ground_truth(self, batch_size: int, device) -> torch.Tensor:
        return torch.arange(batch_size, device=device)  # (B,)

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        logits_per_image, logits_per_text = self.get_logits(image_emb, text_emb, logit_scale)
        labels = self.get_ground_truth(image_emb.shape[0], image_emb.device)
        loss = (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
        if self.hard_negative_weight:
            loss = loss + self.hard_negative_weight * self.hard_negative_term(image_emb @ text_emb.T)
        return loss

    def hard_negative_term(self, cos: torch.Tensor) -> torch.Tensor:
        """Mean over both directions of max(0, margin + hardest negative cosine - positive cosine)."""
        positive = cos.diagonal()  # (B,)
        negatives = cos.masked_fill(torch.eye(len(cos), dtype=torch.bool, device=cos.device), float("-inf"))  # (B, B)
        per_image = (self.margin + negatives.max(1).values - positive).clamp(min=0)
        per_text = (self.margin + negatives.max(0).values - positive).clamp(min=0)
        return (per_image.mean() + per_text.mean()) / 2
