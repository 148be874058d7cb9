"""Image preprocessing: the evaluation view and the augmented training views (torchvision)."""

from __future__ import annotations

from torchvision import transforms as T

CROP_FRACTION = 0.875  # resize to size/0.875, centre-crop size: the usual ImageNet evaluation view


def eval_transform(size: int, mean, std) -> T.Compose:
    return T.Compose([
        T.Resize(int(round(size / CROP_FRACTION)), interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


def train_transform(size: int, mean, std) -> T.Compose:
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.5, 1.0), interpolation=T.InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(),
        T.ColorJitter(0.3, 0.3, 0.3, 0.05),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


def describe(size: int, mean, std) -> str:
    """A stable text naming the preprocessing, used in feature-cache keys."""
    return f"resize{int(round(size / CROP_FRACTION))}-bicubic-crop{size}-mean{tuple(mean)}-std{tuple(std)}"
