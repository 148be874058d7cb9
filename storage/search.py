"""From a query vector to ``SearchHit``s: SQL filters, then FAISS, then the photo records.

Only ``indexed`` photos with a vector are returned. ``missing`` photos (and any others that
still hold a vector) are excluded inside FAISS with an ``IDSelector`` rather than filtered
afterwards, so the search still returns ``k`` hits when ``k`` searchable photos exist;
a ``SearchFilter`` (folder, taken-at range, tag) likewise becomes an allow-list of the indexed ids
it lets through.
"""

from __future__ import annotations

import numpy as np

from . import photos
from .errors import DimensionError
from .records import INDEXED, SearchHit
from .search_filter import SearchFilter
from .vector_store import ReadSession, VectorStore

RETRIES = 4  # searches when writers keep removing hits under it; the last answer stands


def search_hits(
    read: ReadSession,
    vectors: VectorStore,
    query_vec: np.ndarray,
    k: int,
    where: SearchFilter | None,
    exclude: int | None,
) -> list[SearchHit]:
    """Top-``k`` hits by inner product among the photos ``where`` lets through, best first,
    never photo ``exclude``."""
    query = np.ascontiguousarray(np.asarray(query_vec, dtype=np.float32).reshape(1, -1))  # (1, D)
    dim = vectors.dim()
    if dim is None or k <= 0:
        return []
    if query.shape[1] != dim:
        raise DimensionError(f"query has dimension {query.shape[1]}, the library stores {dim}")
    for _ in range(RETRIES):
        with read() as session:
            allow, deny = photos.search_filter(session, where, exclude)
        ids, scores = vectors.search(query, k, allow, deny)
        with read() as session:
            found = photos.get_many(session, ids)
        hits = [
            SearchHit(found[pid], float(score))
            for pid, score in zip(ids.tolist(), scores.tolist())
            if pid in found and found[pid].status == INDEXED  # changed since the filter: skip
        ]
        if len(hits) == len(ids):
            return hits
        # A writer removed (or hid) a hit between the filter and the records: search again, so
        # `k` hits still come back whenever `k` photos match.
    return hits
