"""Shared helpers for the storage tests: records, seeded vectors, a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.storage import Library, PhotoRecord

DIM = 16


def record(path: str, **fields) -> PhotoRecord:
    defaults = dict(size=1000, mtime=1_700_000_000.0, fingerprint=f"fp:{path}")
    return PhotoRecord(path=path, **{**defaults, **fields})


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(lib: Library, paths: list[str], vectors: np.ndarray) -> list[int]:
    """Add one indexed photo per path with its vector; return the ids in order."""
    with lib.transaction():
        ids = lib.add_photos([record(p) for p in paths])
        lib.set_vectors(dict(zip(ids, vectors)))
    return ids


def brute_force(query: np.ndarray, ids: list[int], vectors: np.ndarray, k: int) -> list[int]:
    scores = vectors @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[i] for i in order]


@pytest.fixture
def lib():
    library = Library.in_memory()
    yield library
    library.close()
