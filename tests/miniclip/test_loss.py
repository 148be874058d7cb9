"""The loss and the optimiser's groups, against naive references on seeded random data."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from photosearch.miniclip.config import TrainConfig
from photosearch.miniclip.loss import ClipLoss
from photosearch.miniclip.train import param_groups


def test_hard_negative_term_matches_a_loop_over_rows_and_columns():
    torch.manual_seed(0)
    img, txt = F.normalize(torch.randn(6, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    cos = img @ txt.T
    want = []
    for axis in (0, 1):
        hinge = []
        for i in range(6):
            negatives = [(cos[i, j] if axis == 0 else cos[j, i]).item() for j in range(6) if j != i]
            hinge.append(max(0.0, 0.2 + max(negatives) - cos[i, i].item()))
        want.append(sum(hinge) / 6)
    assert math.isclose(ClipLoss(1.0, 0.2).hard_negative_term(cos).item(), sum(want) / 2, rel_tol=1e-5)
    plain = ClipLoss()(img, txt, torch.tensor(10.0))
    assert math.isclose(ClipLoss(0.5)(img, txt, torch.tensor(10.0)).item(), plain.item() + 0.5 * sum(want) / 2, rel_tol=1e-5)


def test_biases_norms_and_the_temperature_can_go_without_weight_decay():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    model.temperature = nn.Parameter(torch.tensor(1.0))
    everything = param_groups(model, TrainConfig(weight_decay=0.1))
    assert len(everything) == 1 and len(everything[0]["params"]) == 5
    decayed, free = param_groups(model, TrainConfig(weight_decay=0.1, decay_all=False))
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 4])] and decayed["weight_decay"] == 0.1
    assert len(free["params"]) == 4 and free["weight_decay"] == 0.0
