"""Symmetric InfoNCE (the CLIP loss), in small pieces."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ClipLoss(nn.Module):
    """Cross-entropy over image->text and text->image logits; row i's positive is column i.

    The batch sampler guarantees one caption per image in a batch, so the diagonal is the only
    positive.
    """

    def get_logits(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor):
        logits_per_image = logit_scale * image_emb @ text_emb.T  # (B, B)
        return logits_per_image, logits_per_image.T

    def get_ground_truth(self, batch_size: int, device) -> torch.Tensor:
        return torch.arange(batch_size, device=device)  # (B,)

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        logits_per_image, logits_per_text = self.get_logits(image_emb, text_emb, logit_scale)
        labels = self.get_ground_truth(image_emb.shape[0], image_emb.device)
        return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
