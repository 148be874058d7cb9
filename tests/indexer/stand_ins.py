"""A stand-in model and a photo factory shared by the indexer tests.

`ColourModel` implements only the four attributes the indexer uses (see DESIGN.md): its
search vector is the photo's mean colour plus a constant, normalised. Two photos of the
same colour get the same vector, which is all the scanner's logic needs; the real MiniCLIP
is tested in tests/miniclip (and once here, in test_embedder.py).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


class ColourModel:
    """Deterministic stand-in: search vector = normalised (mean R, G, B, 1)."""

    fingerprint = "colour-stand-in-v1"
    search_dim = 4

    def __init__(self):
        self.images_encoded = 0  # how many images went through the "model"

    @staticmethod
    def image_transform(image: Image.Image) -> torch.Tensor:
        small = np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32) / 255.0
        return torch.from_numpy(small).permute(2, 0, 1)  # (3, 8, 8)

    def encode_search_images(self, images: torch.Tensor) -> np.ndarray:
        self.images_encoded += images.shape[0]
        means = images.mean(dim=(2, 3))  # (B, 3)
        vectors = torch.cat([means, torch.ones(len(images), 1)], dim=1)  # (B, 4)
        return torch.nn.functional.normalize(vectors, dim=1).numpy()


def make_photo(path, colour=(200, 30, 30), size=(16, 12)):
    """Write a small solid-colour JPEG (or whatever the suffix says) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path
