"""The in-memory FAISS index of search vectors, keyed by photo id.

Two kinds; in both, FAISS ids *are* photo ids and a delete or an edit is applied in place, so
the next query pays nothing for it (no tombstones, no stale duplicates, no over-fetch):

* ``flat`` — ``IndexIDMap2(IndexFlatIP)``: exact inner product, for small libraries.
* ``ivf`` — ``IndexIVFFlat`` with the inner-product metric and a hash-table direct map:
  the vectors are split into ``nlist`` lists around k-means centroids and a query scans the
  ``nprobe`` lists nearest to it. ``remove_ids`` finds an id through the direct map and
  removes it from its list in O(1); an edit is a remove plus an add.

``IndexConfig`` picks the kind by size and tunes IVF; the figures behind its defaults are in
benchmarks/README.md ("The vector store under churn").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np

FLAT = "flat"
IVF = "ivf"
AUTO = "auto"
KINDS = (FLAT, IVF)
_EMPTY = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))


@dataclass(frozen=True)
class IndexConfig:
    """Which FAISS index to use and how to tune it."""

    kind: str = AUTO  # "auto" (flat up to ivf_threshold vectors, then IVF), "flat" or "ivf"
    ivf_threshold: int = 30_000  # auto: IVF above this many vectors (flat again below half of it)
    ivf_lists_per_sqrt: float = 2.0  # nlist = this x sqrt(vectors): 632 lists at 100k, 2,000 at 1M
    ivf_nprobe: int = 80  # lists scanned per query: recall@10 >= 0.99 on photo-like vectors
    ivf_train_per_list: int = 40  # k-means training sample, vectors per list
    ivf_regrow: float = 4.0  # rebuild (new lists) once the size is 4x, or 1/4 of, the trained one
    exact_filter_limit: int = 20_000  # IVF: a search allowed <= this many ids scores them exactly
    search_threads: int = 1  # OpenMP threads per query: one query is memory-bound, and more
    # threads stall badly when the CPUs are busy (e.g. the indexer embedding photos)

    def __post_init__(self) -> None:
        if self.kind not in (AUTO, *KINDS):
            raise ValueError(f"index kind must be auto, flat or ivf, got {self.kind!r}")

    def kind_for(self, count: int, current: str | None = None) -> str:
        """The index kind for ``count`` vectors (``current``: the kind in use, which auto keeps
        between half the threshold and the threshold, so a library near it does not flip)."""
        if self.kind != AUTO:
            return self.kind
        if current == IVF and count > self.ivf_threshold // 2:
            return IVF
        return IVF if count > self.ivf_threshold else FLAT

    def lists_for(self, count: int) -> int:
        return max(1, round(self.ivf_lists_per_sqrt * math.sqrt(max(count, 1))))


class VectorIndex:
    """A FAISS index of one kind plus the SQLite vector ``generation`` it reflects.

    Not thread-safe by itself: ``storage.vector_store`` lets queries share it and gives
    changes sole use of it.
    """

    def __init__(self, index: faiss.Index, kind: str, config: IndexConfig, generation: int = 0,
                 trained_for: int = 0) -> None:
        self.faiss_index = index
        self.kind = kind
        self.config = config
        self.generation = generation
        self.trained_for = trained_for  # IVF: how many vectors its lists were made for

    @classmethod
    def empty_flat(cls, dim: int, config: IndexConfig, generation: int = 0) -> VectorIndex:
        inner = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(inner)
        index.own_fields = True
        inner.this.disown()  # the IDMap now owns and frees it
        return cls(index, FLAT, config, generation)

    @classmethod
    def untrained_ivf(cls, dim: int, count: int, config: IndexConfig, sample: np.ndarray,
                      generation: int = 0) -> VectorIndex:
        """An empty IVF index for about ``count`` vectors, its centroids trained on ``sample``
        (float32 ``(S, D)``); add vectors with :meth:`apply` or :func:`storage.index_build`."""
        nlist = min(config.lists_for(count), len(sample))
        sample = sample[:: max(1, len(sample) // (nlist * config.ivf_train_per_list))]
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()
        index.cp.niter = 10  # k-means iterations: 10 is within 0.1% of the default 25's recall
        index.cp.min_points_per_centroid = 1  # small samples are fine (and FAISS stays quiet)
        index.cp.max_points_per_centroid = 1 << 30  # the caller already sampled
        with _omp_threads(faiss.omp_get_max_threads()):
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return cls(index, IVF, config, generation, trained_for=count)

    @property
    def dim(self) -> int:
        return self.faiss_index.d

    @property
    def count(self) -> int:
        return self.faiss_index.ntotal

    def needs_rebuild(self) -> str | None:
        """Why this index should be built afresh (wrong kind for its size, or IVF lists made
        for a size 4x away), or None."""
        wanted = self.config.kind_for(self.count, self.kind)
        if wanted != self.kind:
            return f"index kind {self.kind} replaced by {wanted}"
        if self.kind == IVF and self.count and not (
            self.trained_for / self.config.ivf_regrow <= self.count <= self.trained_for * self.config.ivf_regrow
        ):
            return f"IVF lists made for {self.trained_for:,} vectors, now {self.count:,}"
        return None

    def ids(self) -> np.ndarray:
        """Sorted ids of every vector held."""
        if self.kind == FLAT:
            return np.sort(faiss.vector_to_array(self.faiss_index.id_map))
        invlists = self.faiss_index.invlists
        parts = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                 for i in range(invlists.nlist) if invlists.list_size(i)]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (all present), float32 ``(len(ids), D)``."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.faiss_index.reconstruct_batch(ids)

    def apply(self, removed: Iterable[int], upserts: dict[int, np.ndarray]) -> None:
        """Delete ``removed`` (all present), then add ``upserts`` (none present after that)."""
        removed = _id_array(removed)
        if removed.size:
            # IVF's hash-table direct map removes ids given as an array, each in O(1); the flat
            # index scans its id map once against a hashed set.
            selector = faiss.IDSelectorArray(removed) if self.kind == IVF else faiss.IDSelectorBatch(removed)
            self.faiss_index.remove_ids(selector)
        if upserts:
            ids = _id_array(upserts)
            self.faiss_index.add_with_ids(np.stack([upserts[int(i)] for i in ids]), ids)

    def search(self, query: np.ndarray, k: int, allow: np.ndarray | None = None,
               deny: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(ids, scores)`` by inner product with ``query`` (float32 ``(1, D)``).

        ``allow``: only these ids may be returned; ``deny``: these ids may not. Both cost
        the query O(their size); nothing else depends on the library's size or history.
        """
        if k <= 0 or self.count == 0:
            return _EMPTY
        keep_alive = []  # selectors must outlive the search call
        if allow is not None:
            allow = np.asarray(allow, dtype=np.int64)
            if deny is not None and len(deny):
                allow = np.setdiff1d(allow, deny)
            if allow.size == 0:
                return _EMPTY
            keep_alive.append(faiss.IDSelectorBatch(allow))
            if self.kind == IVF and allow.size <= self.config.exact_filter_limit:
                if self.faiss_index.direct_map.type == faiss.DirectMap.Hashtable:
                    return self._exact(query, k, allow)
                return self._search(query, k, keep_alive[0], self.faiss_index.nlist)  # mapped file: no id map
        elif deny is not None and len(deny):
            keep_alive.append(faiss.IDSelectorBatch(np.asarray(deny, dtype=np.int64)))
            keep_alive.append(faiss.IDSelectorNot(keep_alive[0]))
        selector = keep_alive[-1] if keep_alive else None
        ids, scores = self._search(query, k, selector, self.config.ivf_nprobe)
        wanted = min(k, self.count if allow is None else allow.size)
        if self.kind == IVF and ids.size < wanted:  # the filter emptied the nearest lists
            ids, scores = self._search(query, k, selector, self.faiss_index.nlist)
        return ids, scores

    def _search(self, query: np.ndarray, k: int, selector, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == IVF:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=min(nprobe, self.faiss_index.nlist))
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        with _omp_threads(self.config.search_threads):
            scores, ids = self.faiss_index.search(query, k, params=params)
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]

    def _exact(self, query: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` among ``ids`` (ones the index lacks, as a stale file may, skipped)."""
        try:
            vectors = self.vectors_of(ids)
        except RuntimeError:  # some id unknown to the index: keep the ones it holds
            ids = np.array([i for i in ids.tolist() if self._holds(i)], dtype=np.int64)
            vectors = self.vectors_of(ids)
        scores = vectors @ query[0]  # (n, D) @ (D,) -> (n,)
        top = np.argsort(-scores, kind="stable")[:k]
        return ids[top], scores[top]

    def copy_vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the ``ids`` the index holds, sorted; float32 (n, D) copies of their vectors)."""
        held = np.array([i for i in np.unique(np.asarray(ids, dtype=np.int64)).tolist() if self._holds(i)],
                        dtype=np.int64)
        return held, np.array(self.vectors_of(held), dtype=np.float32)

    def _holds(self, pid: int) -> bool:
        try:
            self.faiss_index.reconstruct(pid)
        except RuntimeError:
            return False
        return True


@contextmanager
def _omp_threads(count: int) -> Iterator[None]:
    """Run FAISS with ``count`` OpenMP threads in *this* thread (the setting is per thread, so
    an indexing thread building lists keeps all cores)."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _id_array(ids) -> np.ndarray:
    return np.fromiter((int(i) for i in ids), dtype=np.int64)
