"""A perceptual hash of a photo (pHash): 64 bits that survive re-encoding, resizing, a small
crop or a brightness change, and differ between two photos of the same kind of scene.

The photo in grey, shrunk to 32 × 32, through a 2-D DCT; the 8 × 8 lowest frequencies are
compared with their median (the DC term left out of the median), one bit each. The DCT is a
matrix product here (numpy), not scipy's, which the runtime does not otherwise need
(imagehash's `phash` computes the same with scipy.fftpack).

The search vectors say what a photo shows, so two photos of one scene score high; the hash
says what it looks like pixel by pixel. `indexer.duplicates` uses both.
"""

from __future__ import annotations

import numpy as np

SIDE = 32
LOW = 8
_k = np.arange(SIDE)
_DCT = np.sqrt(2 / SIDE) * np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * SIDE))  # (32, 32)
_DCT[0] /= np.sqrt(2)  # orthonormal DCT-II


def perceptual_hash(image) -> int:
    """A PIL image -> its 64-bit pHash as a signed int64 (as SQLite stores integers)."""
    from PIL import Image

    grey = np.asarray(image.convert("L").resize((SIDE, SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT @ grey @ _DCT.T)[:LOW, :LOW].ravel()  # (64,)
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">i8")[0])


def hash_distance(a: int, b: int) -> int:
    """Bits that differ between two hashes (0..64)."""
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()
