"""Libraries of N synthetic photos (random unit vectors), filled through storage's own API.

Search cost does not depend on what the vectors mean, so a library of random unit vectors of
the model's `search_dim` times search at any size without embedding a million photos. The
photos' paths lie under a folder that does not exist and is never a root, so a daemon
watching another (empty) folder keeps them all searchable.

Filling is slow at a million (SQLite rows, then the HNSW graph), so a filled library is kept
under the work folder and reused by later runs; its ids are saved beside it, and its vectors
can be made again, chunk by chunk, from the seed (`vector_chunks`) for exact ground truth.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

PHOTO_ROOT = "/nonexistent/benchmark-photos"  # never on disk, never a root
CHUNK = 20_000  # vectors per transaction, and per regenerated chunk
VERSION = 1


def library_folder(work: Path, n: int, dim: int) -> Path:
    return Path(work) / f"library-n{n}-d{dim}-v{VERSION}"


def vector_chunks(n: int, dim: int, seed: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(start, (count, dim) float32 unit vectors), the same every time for the same seed."""
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        vectors = np.random.default_rng([seed, start]).standard_normal((count, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield start, vectors


def synthetic_library(work: Path, n: int, dim: int, log=print) -> tuple[Path, float | None]:
    """(folder, seconds spent filling it now, or None when an earlier run's was reused)."""
    from storage import Library, PhotoRecord

    folder = library_folder(work, n, dim)
    marker = folder / "benchmark.json"
    if marker.is_file():
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    ids = []
    with Library.open(folder) as lib:
        for start, vectors in vector_chunks(n, dim):
            records = [
                PhotoRecord(path=f"{PHOTO_ROOT}/{(start + i) // 1000:04d}/IMG_{start + i:07d}.jpg",
                            size=3_000_000 + start + i, mtime=1.7e9, fingerprint=f"benchmark-{start + i}")
                for i in range(len(vectors))
            ]
            with lib.transaction():
                chunk_ids = lib.add_photos(records)
                lib.set_vectors(dict(zip(chunk_ids, vectors)))
            ids.extend(chunk_ids)
            if start and start % 200_000 == 0:
                log(f"  filled {start:,} of {n:,} ({time.perf_counter() - started:.0f} s)")
        log(f"  saving the index of {n:,} vectors (HNSW is built here above 200k)")
    seconds = time.perf_counter() - started
    np.save(folder / "benchmark-ids.npy", np.asarray(ids, dtype=np.int64))
    marker.write_text(json.dumps({"n": n, "dim": dim, "fill_seconds": seconds}))
    return folder, seconds


def exact_top_k(n: int, dim: int, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) photo ids of the exact inner-product top-k, streaming the regenerated vectors."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start, vectors in vector_chunks(n, dim):
        scores = queries @ vectors.T  # (Q, count)
        rows = np.broadcast_to(np.arange(start, start + len(vectors)), scores.shape)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_rows = np.concatenate([best_rows, rows], axis=1)
        top = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, top, axis=1)
        best_rows = np.take_along_axis(all_rows, top, axis=1)
    return ids[best_rows]
