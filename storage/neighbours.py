"""Pairs of near-identical photos: every stored vector's nearest neighbours above a cosine.

What `photosearch duplicates --near` builds its groups from. The vectors are copied out of
the library's FAISS index (each photo's newest entry) and normalised, then searched against
themselves in a throw-away FAISS index: exact (`IndexFlatIP`) up to `EXACT_LIMIT` photos,
above it an inverted file (`IndexIVFFlat`, sqrt(N) lists trained on 40 photos a list, `NPROBE`
probed), searched in `REDUCED` PCA dimensions, so a library of 100k photos is not compared
pair by pair. Every candidate pair is then scored exactly in full. A near-duplicate's cosine
is far above that of any other photo, so it shares a list with the photo it copies or sits in
a close one; benchmarks/duplicates.py measures what the inverted file finds against the exact
search.
"""

from __future__ import annotations

import faiss
import numpy as np

from .vector_index import VectorIndex

EXACT_LIMIT = 5_000  # photos searched exactly; above, an inverted file
NPROBE = 8  # inverted lists probed per photo
CHUNK = 4096  # photos per FAISS search call
REDUCED = 64  # dimensions the inverted file searches in (PCA); candidates are re-scored in full


def stored_vectors(index: VectorIndex, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, unit vectors float32 (n, D)) of the live ``ids`` in ``index`` (a copy)."""
    found, vectors = index.copy_vectors(ids)
    faiss.normalize_L2(vectors)
    return found, vectors


def near_pairs(ids: np.ndarray, vectors: np.ndarray, min_cosine: float, k: int = 10
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a, b, cosine) with a < b, b among a's `k` nearest (or a among b's) and cosine >=
    `min_cosine`, from unit ``vectors`` (n, D) named by ``ids`` (n,)."""
    n = len(vectors)
    if n < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float32)
    fetch = min(k + 1, n)
    if n <= EXACT_LIMIT:
        search, space = faiss.IndexFlatIP(vectors.shape[1]), vectors
    else:
        search, space = _inverted_file(vectors)
    search.add(space)
    firsts, seconds = [], []
    for start in range(0, n, CHUNK):
        _, found = search.search(space[start:start + CHUNK], fetch)  # (c, fetch)
        rows = np.arange(start, start + len(found))[:, None].repeat(fetch, axis=1)
        keep = (found >= 0) & (found != rows)
        firsts.append(np.minimum(rows[keep], found[keep]))
        seconds.append(np.maximum(rows[keep], found[keep]))
    pairs = np.unique(np.stack([np.concatenate(firsts), np.concatenate(seconds)], axis=1), axis=0)  # (P, 2)
    cosines = np.einsum("pd,pd->p", vectors[pairs[:, 0]], vectors[pairs[:, 1]])  # exact, in full D
    pairs, cosines = pairs[cosines >= min_cosine], cosines[cosines >= min_cosine]
    a, b = ids[pairs[:, 0]], ids[pairs[:, 1]]
    order = np.lexsort((np.maximum(a, b), np.minimum(a, b)))
    return np.minimum(a, b)[order], np.maximum(a, b)[order], cosines[order].astype(np.float32)


def _inverted_file(vectors: np.ndarray):
    """An IVF over the vectors reduced to `REDUCED` dimensions by PCA, and
    the reduced, renormalised vectors to add and search with."""
    n, dim = vectors.shape
    lists = max(1, min(int(np.sqrt(n)), n // 40))  # FAISS wants >= 39 training photos a list
    sample = vectors[np.sort(np.random.default_rng(0).choice(n, size=min(n, 40 * lists), replace=False))]
    pca = faiss.PCAMatrix(dim, min(REDUCED, dim))
    pca.train(sample)
    space = pca.apply(vectors)
    faiss.normalize_L2(space)
    search = faiss.IndexIVFFlat(faiss.IndexFlatIP(space.shape[1]), space.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
    search.train(pca.apply(sample) / np.linalg.norm(pca.apply(sample), axis=1, keepdims=True))
    search.nprobe = NPROBE
    return search, space
