"""Libraries of N synthetic photos, filled through storage's own API.

Their vectors are drawn around real photo embeddings (`benchmarks.photo_vectors`), so search
is timed, and an approximate index's recall measured, on data shaped like a real library's,
at any size, without embedding a million photos. The photos' paths lie under a folder that
does not exist and is never a root, so a daemon watching another (empty) folder keeps them
all searchable.

Filling is slow at a million (SQLite rows, then the HNSW graph), so a filled library is kept
under the work folder and reused by later runs; its ids and bases are saved beside it, and its
vectors can be made again, chunk by chunk (`VectorSource.chunks`), for exact ground truth.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.photo_vectors import VectorSource

PHOTO_ROOT = "/nonexistent/benchmark-photos"  # never on disk, never a root
VERSION = 2  # 2: vectors around real photo embeddings (1: uniform random unit vectors)


def library_folder(work: Path, n: int, source: VectorSource) -> Path:
    digest = hashlib.sha256(source.bases.tobytes()).hexdigest()[:8]
    return Path(work) / f"library-n{n}-d{source.dim}-v{VERSION}-{digest}"


def synthetic_library(work: Path, n: int, source: VectorSource, log=print) -> tuple[Path, float | None]:
    """(folder, seconds spent filling it now, or None when an earlier run's was reused)."""
    from photosearch.storage import Library, PhotoRecord

    folder = library_folder(work, n, source)
    marker = folder / "benchmark.json"
    if marker.is_file():
        return folder, None
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    ids = []
    with Library.open(folder) as lib:
        for start, vectors in source.chunks(n):
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
    source.save(folder)
    marker.write_text(json.dumps({"n": n, "dim": source.dim, "fill_seconds": seconds, "bases": source.origin}))
    return folder, seconds


def exact_top_k(n: int, source: VectorSource, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) photo ids of the exact inner-product top-k, streaming the regenerated vectors."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start, vectors in source.chunks(n):
        scores = queries @ vectors.T  # (Q, count)
        rows = np.broadcast_to(np.arange(start, start + len(vectors)), scores.shape)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_rows = np.concatenate([best_rows, rows], axis=1)
        top = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, top, axis=1)
        best_rows = np.take_along_axis(all_rows, top, axis=1)
    return ids[best_rows]
