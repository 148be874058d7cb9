"""A generic training loop: AdamW, warmup + cosine schedule, clipping, early stopping.

It knows nothing about CLIP: it gets a model, a batch source, a loss function and a validation
function, and reports each epoch through a callback.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from photosearch.miniclip.config import TrainConfig


@dataclass
class EpochReport:
    epoch: int
    train_loss: float
    val: dict
    lr: float
    seconds: float
    score: float
    best: bool


@dataclass
class FitResult:
    history: list[EpochReport] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("-inf")
    stopped_early: bool = False


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warmup to 1, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: every trainable tensor decays with `decay_all`; otherwise only matrices and
    embeddings (ndim >= 2) do, and biases, norm scales and the temperature (ndim < 2) do not."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if cfg.decay_all:
        return [{"params": trainable, "weight_decay": cfg.weight_decay}]
    return [{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}]


def fit(
    model: nn.Module,
    batches: Callable[[int], Iterable],
    loss_fn: Callable[[nn.Module, object], torch.Tensor],
    validate: Callable[[nn.Module], tuple[float, dict]],
    cfg: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_step: Callable[[float], None] | None = None,
) -> FitResult:
    """Train; leaves the model holding the weights of the best validation epoch."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr)
    steps_per_epoch = max(1, sum(1 for _ in batches(-1)))
    total = steps_per_epoch * cfg.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, steps_per_epoch * cfg.warmup_epochs, total)
    )
    result = FitResult()
    best_state = copy.deepcopy(model.state_dict())
    stale = 0
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        model.train()
        losses = []
        for batch in batches(epoch):
            loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            if on_step:
                on_step(losses[-1])
        model.eval()
        score, val = validate(model)
        improved = score > result.best_score
        if improved:
            result.best_score, result.best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        report = EpochReport(epoch, sum(losses) / max(1, len(losses)), val, schedule.get_last_lr()[0],
                             time.perf_counter() - start, score, improved)
        result.history.append(report)
        if on_epoch:
            on_epoch(report)
        if stale >= cfg.patience:
            result.stopped_early = True
            break
    model.load_state_dict(best_state)
    model.eval()
    return result
