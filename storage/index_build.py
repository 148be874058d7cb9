"""Making the FAISS index agree with SQLite's vector rows: a fresh build, or catching up.

Both stream the rows (``vector_rows.stream``) inside one read transaction, so every pass sees
the same snapshot, and neither holds more than one chunk of rows besides the index itself:

* :func:`build` preallocates the index's storage at its final size and copies rows straight
  into it. Flat: one ``(n, D)`` block. IVF: three passes — every ``stride``-th row as the
  k-means sample, then each row's list (int64 per row), then each list sized exactly and
  filled. Peak memory: the vectors once, plus the sample (~4% of them) and one chunk.
* :func:`catch_up` applies only what differs (rows added, deleted or re-embedded since the
  index was saved): what a writer does with an index file that fell behind, e.g. after a
  crash, instead of building it again.
"""

from __future__ import annotations

from collections.abc import Iterator

import faiss
import numpy as np
from sqlalchemy.orm import Session

from . import meta, vector_rows
from .vector_index import FLAT, IndexConfig, VectorIndex, _omp_threads

ASSIGN_CHUNK = 16_384  # rows assigned to lists at a time


def build(session: Session, config: IndexConfig, kind: str | None = None) -> VectorIndex | None:
    """A fresh index of SQLite's vectors (None when there are none), at its generation;
    ``kind``: force one (default: the one ``config`` picks for the row count)."""
    generation = int(meta.get(session, meta.GENERATION, 0))
    count = vector_rows.count(session)
    dim = meta.get(session, meta.VECTOR_DIM)
    if count == 0 or dim is None:
        return None
    kind = kind or config.kind_for(count)
    if kind == FLAT:
        return _flat(session, count, int(dim), config, generation)
    return _ivf(session, count, int(dim), config, generation)


def _flat(session: Session, count: int, dim: int, config: IndexConfig, generation: int) -> VectorIndex:
    built = VectorIndex.empty_flat(dim, config, generation)
    idmap = built.faiss_index
    inner = faiss.downcast_index(idmap.index)
    inner.codes.resize(count * dim * 4)  # float32 rows, allocated once at the final size
    idmap.id_map.resize(count)
    vectors = faiss.rev_swig_ptr(inner.get_xb(), count * dim).reshape(count, dim)
    ids = faiss.rev_swig_ptr(idmap.id_map.data(), count)
    done = 0
    for chunk_ids, chunk in vector_rows.stream(session):
        ids[done : done + len(chunk_ids)] = chunk_ids
        vectors[done : done + len(chunk_ids)] = chunk
        done += len(chunk_ids)
    inner.ntotal = idmap.ntotal = done
    idmap.construct_rev_map()
    return built


def _ivf(session: Session, count: int, dim: int, config: IndexConfig, generation: int) -> VectorIndex:
    stride = max(1, count // (config.lists_for(count) * config.ivf_train_per_list))
    sample = np.empty((-(-count // stride), dim), dtype=np.float32)  # every stride-th row
    for start, chunk in _numbered(session):
        picked = chunk[(-start) % stride :: stride]
        sample[-(-start // stride) : -(-start // stride) + len(picked)] = picked
    built = VectorIndex.untrained_ivf(dim, count, config, sample, generation)
    del sample
    index = built.faiss_index
    lists = np.empty(count, dtype=np.int64)
    with _omp_threads(faiss.omp_get_max_threads()):
        for start, chunk in _numbered(session, ASSIGN_CHUNK):
            _, nearest = index.quantizer.search(chunk, 1)
            lists[start : start + len(chunk)] = nearest[:, 0]
    invlists = faiss.downcast_InvertedLists(index.invlists)
    for number, size in enumerate(np.bincount(lists, minlength=index.nlist).tolist()):
        invlists.resize(number, size)
    filled = np.zeros(index.nlist, dtype=np.int64)
    start = 0
    for chunk_ids, chunk in vector_rows.stream(session):
        chunk_lists = lists[start : start + len(chunk_ids)]
        start += len(chunk_ids)
        order = np.argsort(chunk_lists, kind="stable")
        numbers, firsts, sizes = np.unique(chunk_lists[order], return_index=True, return_counts=True)
        for number, first, size in zip(numbers.tolist(), firsts.tolist(), sizes.tolist()):
            rows = order[first : first + size]
            list_ids = np.ascontiguousarray(chunk_ids[rows])  # kept alive during the call
            codes = np.ascontiguousarray(chunk[rows])
            invlists.update_entries(number, int(filled[number]), size,
                                    faiss.swig_ptr(list_ids), faiss.swig_ptr(codes.view(np.uint8)))
            filled[number] += size
    index.ntotal = start
    index.set_direct_map_type(faiss.DirectMap.NoMap)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # rebuilt from the filled lists
    return built


def _numbered(session: Session, chunk: int = vector_rows.CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """``(position of the chunk's first row, its vectors)`` over every row, by id."""
    start = 0
    for ids, vectors in vector_rows.stream(session, chunk):
        yield start, vectors
        start += len(ids)


def differences(index: VectorIndex, session: Session) -> Iterator[tuple[np.ndarray, dict[int, np.ndarray]]]:
    """``(ids to remove, {id: vector} to add)`` chunk by chunk, that turn ``index`` into
    SQLite's vectors: rows it lacks or holds with another vector, then ids SQLite lacks."""
    held = index.ids()
    seen = np.zeros(held.size, dtype=bool)
    for ids, vectors in vector_rows.stream(session):
        at = np.minimum(np.searchsorted(held, ids), max(held.size - 1, 0))
        present = held[at] == ids if held.size else np.zeros(ids.size, dtype=bool)
        seen[at[present]] = True
        differs = np.zeros(ids.size, dtype=bool)
        if present.any():
            differs[present] = np.any(index.vectors_of(ids[present]) != vectors[present], axis=1)
        wanted = ~present | differs
        if wanted.any():
            yield ids[differs], dict(zip(ids[wanted].tolist(), vectors[wanted]))
    if not seen.all():
        yield held[~seen], {}


def catch_up(index: VectorIndex, session: Session) -> int:
    """Apply :func:`differences` to ``index`` and move it to SQLite's generation; returns how
    many ids changed."""
    changed = 0
    for removed, upserts in differences(index, session):
        index.apply(removed, upserts)
        changed += len(upserts) + len(set(removed.tolist()) - set(upserts))
    index.generation = int(meta.get(session, meta.GENERATION, 0))
    return changed
