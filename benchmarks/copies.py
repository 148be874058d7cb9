"""Indexing cost of byte-identical copies (issue 12, part 2): N copies of one tiny JPEG.

Usage: ``.venv/bin/python -m benchmarks.copies [--distinct] [N ...]`` (default 1000 2000 4000);
``--distinct`` times N different photos instead, for comparison.
A stand-in model (mean colour) keeps the model out of the timing; what is timed is the
scanner and the library, on disk. Cost per photo should stay flat as N grows.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.storage import Library


class _MeanColour:
    fingerprint = "bench-mean-colour"
    search_dim = 4

    @staticmethod
    def preprocess(image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.uint8)

    def encode_search_images(self, pixels: np.ndarray) -> np.ndarray:
        means = pixels.astype(np.float32).mean(axis=(1, 2)) / 255.0
        vectors = np.concatenate([means, np.ones((len(pixels), 1), np.float32)], axis=1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def time_copies(count: int, distinct: bool = False) -> float:
    """Seconds to index `count` copies of one JPEG (or `distinct` photos) into a fresh
    on-disk library."""
    work = Path(tempfile.mkdtemp(prefix="copies-"))
    try:
        photos = work / "photos"
        photos.mkdir()
        Image.new("RGB", (16, 12), (200, 30, 30)).save(photos / "0.jpg")
        for i in range(1, count):
            if distinct:
                Image.new("RGB", (16, 12), (i % 256, i // 256, 7)).save(photos / f"{i}.jpg")
            else:
                shutil.copyfile(photos / "0.jpg", photos / f"{i}.jpg")
        with Library.open(work / "lib") as lib, Embedder(_MeanColour(), workers=2) as emb:
            start = time.perf_counter()
            report = Scanner(lib, emb).scan([photos])
            seconds = time.perf_counter() - start
        assert report.added == count, report
        return seconds
    finally:
        shutil.rmtree(work)


def main(argv: list[str]) -> None:
    distinct = "--distinct" in argv
    what = "different photos" if distinct else "copies"
    for count in [int(a) for a in argv if a != "--distinct"] or [1000, 2000, 4000]:
        seconds = time_copies(count, distinct)
        print(f"{count:6d} {what}: {seconds:7.2f} s  ({1000 * seconds / count:.2f} ms/photo)")


if __name__ == "__main__":
    main(sys.argv[1:])
