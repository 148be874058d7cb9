"""A stand-in model and a photo factory shared by the indexer tests.

`ColourModel` implements only the attributes the indexer uses (see DESIGN.md): its
search vector is the photo's mean colour plus a constant, normalised. Two photos of the
same colour get the same vector, which is all the scanner's logic needs; the real MiniCLIP
is tested in tests/miniclip (and once here, in test_embedder.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


class ColourModel:
    """Deterministic stand-in: search vector = normalised (mean R, G, B, 1)."""

    fingerprint = "colour-stand-in-v1"
    search_dim = 4

    def __init__(self):
        self.images_encoded = 0  # how many images went through the "model"

    @staticmethod
    def preprocess(image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.uint8)  # (8, 8, 3)

    def encode_search_images(self, pixels: np.ndarray) -> np.ndarray:
        self.images_encoded += pixels.shape[0]
        means = pixels.astype(np.float32).mean(axis=(1, 2)) / 255.0  # (B, 3)
        vectors = np.concatenate([means, np.ones((len(pixels), 1), np.float32)], axis=1)  # (B, 4)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_photo(path, colour=(200, 30, 30), size=(16, 12)):
    """Write a small solid-colour JPEG (or whatever the suffix says) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path
