"""The in-memory FAISS index of search vectors, keyed by photo id.

Two kinds, both wrapped in ``faiss.IndexIDMap2`` so FAISS ids *are* photo ids:

* ``flat`` — ``IndexFlatIP``: exact inner product. Deletes and replacements use ``remove_ids``.
* ``hnsw`` — ``IndexHNSWFlat`` with the inner-product metric: approximate, for large
  libraries. HNSW cannot remove vectors, so

  - a deleted id becomes a *tombstone*: it stays in the graph and is filtered out of every
    search by an ``IDSelector``;
  - a replaced vector is added again under the same id; the old entry stays in the graph as
    a *stale duplicate*. ``IndexIDMap2`` maps the id to its newest entry, so search results
    are de-duplicated and re-scored against the newest vector (``reconstruct``), and each
    search fetches ``k + garbage`` candidates so ``k`` distinct live ids still come back.

  Tombstones and duplicates are *garbage*; once it exceeds ``max_garbage_fraction`` the
  library rebuilds the graph from the durable SQLite copy (see ``needs_compaction``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np

FLAT = "flat"
HNSW = "hnsw"
AUTO = "auto"


@dataclass(frozen=True)
class IndexConfig:
    """Which FAISS index to use and how to tune it."""

    kind: str = AUTO  # "auto" (flat up to hnsw_threshold vectors, then HNSW), "flat" or "hnsw"
    hnsw_threshold: int = 200_000  # "auto" switches to HNSW above this many vectors
    hnsw_m: int = 32  # HNSW graph degree: more links, better recall, more memory
    hnsw_ef_construction: int = 100  # beam width while building the graph
    hnsw_ef_search: int = 1024  # beam width per query. On a million vectors shaped like photo
    # embeddings (benchmarks/photo_vectors.py), recall@10 against exact search was 0.956 / 0.982 /
    # 0.997 / 1.000 at 256 / 512 / 1024 / 2048, at ~8-19 ms a query. Uniform random 640-d vectors,
    # which no graph can navigate, get far less (0.11 at 1M with 512).
    exact_filter_limit: int = 50_000  # HNSW: a filtered search over <= this many ids runs exactly
    max_garbage_fraction: float = 0.05  # HNSW: rebuild when tombstones + stale entries exceed this
    search_threads: int = 1  # OpenMP threads per query: one query is memory-bound, and more
    # threads stall badly when the CPUs are busy (e.g. the indexer embedding photos)

    def __post_init__(self) -> None:
        if self.kind not in (AUTO, FLAT, HNSW):
            raise ValueError(f"index kind must be auto, flat or hnsw, got {self.kind!r}")

    def kind_for(self, count: int) -> str:
        """The index kind to use for ``count`` vectors."""
        if self.kind != AUTO:
            return self.kind
        return HNSW if count > self.hnsw_threshold else FLAT


_EMPTY = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))


class VectorIndex:
    """A FAISS ``IndexIDMap2`` plus the bookkeeping described in the module docstring.

    Not thread-safe by itself: the library serialises access with its index lock.
    ``generation`` is the SQLite vector generation this index reflects.
    """

    def __init__(
        self,
        index: faiss.IndexIDMap2,
        kind: str,
        config: IndexConfig,
        generation: int = 0,
        tombstones: np.ndarray | None = None,
        live_count: int | None = None,
    ) -> None:
        self.faiss_index = index
        self.kind = kind
        self.config = config
        self.generation = generation
        self._tombstones = set() if tombstones is None else {int(t) for t in tombstones}
        self.count = index.ntotal if live_count is None else live_count  # live vectors
        if kind == HNSW:
            faiss.downcast_index(index.index).hnsw.efSearch = config.hnsw_ef_search

    @classmethod
    def empty(cls, dim: int, kind: str, config: IndexConfig, generation: int = 0) -> VectorIndex:
        if kind == HNSW:
            inner = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = config.hnsw_ef_construction
        else:
            inner = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(inner)
        index.own_fields = True
        inner.this.disown()  # the IDMap now owns and frees it
        return cls(index, kind, config, generation)

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, config: IndexConfig, generation: int
    ) -> VectorIndex:
        """A fresh index of the kind ``config`` picks for ``len(ids)`` vectors."""
        built = cls.empty(vectors.shape[1], config.kind_for(len(ids)), config, generation)
        if len(ids):
            built.faiss_index.add_with_ids(vectors, ids)
            built.count = len(ids)
        return built

    @property
    def dim(self) -> int:
        return self.faiss_index.d

    @property
    def tombstones(self) -> list[int]:
        return sorted(self._tombstones)

    @property
    def garbage(self) -> int:
        """Entries in the graph that are not live vectors (tombstones and stale duplicates)."""
        return self.faiss_index.ntotal - self.count

    def needs_compaction(self) -> bool:
        return self.garbage > self.config.max_garbage_fraction * max(self.faiss_index.ntotal, 1)

    def live_ids(self) -> np.ndarray:
        """Sorted ids of the live vectors."""
        ids = np.unique(faiss.vector_to_array(self.faiss_index.id_map))
        if self._tombstones:
            ids = ids[~np.isin(ids, self.tombstones)]
        return ids

    def apply(self, removed: set[int], upserts: dict[int, np.ndarray]) -> None:
        """Delete ``removed`` (all present), then add or replace ``upserts``."""
        if self.kind == FLAT:
            if removed:
                self.faiss_index.remove_ids(faiss.IDSelectorBatch(_id_array(removed)))
        else:
            self._tombstones.update(removed.difference(upserts))
            self._tombstones.difference_update(upserts)
        if upserts:
            ids = _id_array(upserts)
            self.faiss_index.add_with_ids(np.stack([upserts[int(i)] for i in ids]), ids)
        self.count += len(upserts) - len(removed)

    def search(
        self,
        query: np.ndarray,
        k: int,
        allow: np.ndarray | None = None,
        deny: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(ids, scores)`` by inner product with ``query`` (shape ``(1, D)``).

        ``allow``: only these ids may be returned; ``deny``: these ids may not.
        """
        if k <= 0 or self.count == 0:
            return _EMPTY
        excluded = np.union1d(
            _id_array(deny if deny is not None else ()), _id_array(self._tombstones)
        )
        keep_alive = []  # selectors must outlive the search call
        if allow is not None:
            allow = np.asarray(allow, dtype=np.int64)
            allow = allow[~np.isin(allow, excluded)]
            if allow.size == 0:
                return _EMPTY
            if self.kind == HNSW and allow.size <= self.config.exact_filter_limit:
                return self._exact(query, k, allow)
            keep_alive.append(faiss.IDSelectorBatch(allow))
        elif excluded.size:
            keep_alive.append(faiss.IDSelectorBatch(excluded))
            keep_alive.append(faiss.IDSelectorNot(keep_alive[0]))
        selector = keep_alive[-1] if keep_alive else None
        fetch = min(k + self.garbage, self.faiss_index.ntotal)
        if self.kind == HNSW:
            params = faiss.SearchParametersHNSW(
                sel=selector, efSearch=max(self.config.hnsw_ef_search, fetch)
            )
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        with _omp_threads(self.config.search_threads):
            scores, ids = self.faiss_index.search(query, fetch, params=params)
        scores, ids = scores[0], ids[0]
        found = ids >= 0
        ids, scores = ids[found], scores[found]
        if self.garbage:
            return self._exact(query, k, np.unique(ids))  # de-duplicate, score newest vectors
        return ids[:k], scores[:k]

    def _exact(self, query: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` among ``ids`` (none of them tombstones), scored against each id's
        newest entry, read straight from the index's vector storage (no copies per id)."""
        labels = faiss.vector_to_array(self.faiss_index.id_map)  # (ntotal,) entry -> photo id
        positions = np.flatnonzero(np.isin(labels, ids))
        if self.garbage:  # keep only the newest entry of a replaced id
            newest_first = positions[::-1]
            _, first = np.unique(labels[newest_first], return_index=True)
            positions = newest_first[first]
        if positions.size == 0:
            return _EMPTY
        scores = self._stored_vectors()[positions] @ query[0]  # (n, D) @ (D,) -> (n,)
        top = np.argsort(-scores, kind="stable")[:k]
        return labels[positions[top]], scores[top]

    def copy_vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 (n, D) copies of their newest vectors) for the live ``ids`` present,
        in storage order."""
        labels = faiss.vector_to_array(self.faiss_index.id_map)  # (ntotal,) entry -> photo id
        positions = np.flatnonzero(np.isin(labels, ids) & ~np.isin(labels, self.tombstones))
        newest_first = positions[::-1]  # a replaced vector: its newest entry
        _, first = np.unique(labels[newest_first], return_index=True)
        positions = np.sort(newest_first[first])
        return labels[positions].astype(np.int64), np.array(self._stored_vectors()[positions], dtype=np.float32)

    def _stored_vectors(self) -> np.ndarray:
        """A no-copy ``(ntotal, D)`` view of the raw vectors, valid while the index is unchanged."""
        inner = faiss.downcast_index(self.faiss_index.index)
        flat = faiss.downcast_index(inner.storage) if self.kind == HNSW else inner
        total = flat.ntotal
        return faiss.rev_swig_ptr(flat.get_xb(), total * self.dim).reshape(total, self.dim)


@contextmanager
def _omp_threads(count: int) -> Iterator[None]:
    """Run FAISS with ``count`` OpenMP threads in *this* thread (the setting is per thread, so
    an indexing thread building the graph keeps all cores)."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _id_array(ids) -> np.ndarray:
    return np.fromiter((int(i) for i in ids), dtype=np.int64)
