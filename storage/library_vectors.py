"""The vector half of ``Library``: storing search vectors, searching them, and the FAISS
index's upkeep (save, check).

``VectorMethods`` is mixed into ``storage.library.Library``. Vectors are written to SQLite
(``storage.vector_rows``) inside the transaction and applied to FAISS
(``storage.vector_store``) only when it commits, so searches see committed vectors only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone

import numpy as np

from . import meta, photos, tags, vector_rows
from .errors import DimensionError, PhotoNotFoundError, ReadOnlyError
from .library_core import LibraryCore, PathLike
from .records import PhotoRecord, SearchHit
from .search import search_hits
from .search_filter import SearchFilter


class VectorMethods(LibraryCore):
    """Search vectors, search and index upkeep of a ``Library``."""

    # -- vectors -----------------------------------------------------------------------------
    def set_vectors(self, vectors: Mapping[int, np.ndarray]) -> None:
        """Store (or replace) search vectors, each float32 ``(D,)``; mark the photos indexed.

        The first vectors fix the library's ``D``; others raise DimensionError until
        ``clear_vectors``. All-or-nothing: nothing is written if any id or vector is bad.
        """
        if not vectors:
            return
        ids = [int(pid) for pid in vectors]
        matrix = vector_rows.as_matrix(list(vectors.values()))  # (N, D)
        with self._write() as tx:
            session = tx.session
            dim = meta.get(session, meta.VECTOR_DIM)
            if dim is not None and dim != matrix.shape[1]:
                raise DimensionError(
                    f"vectors have dimension {matrix.shape[1]} but the library stores {dim}; "
                    "clear_vectors() first to reindex with another model"
                )
            unknown = set(ids) - set(photos.get_many(session, ids))
            if unknown:
                raise PhotoNotFoundError(f"no photos with ids {sorted(unknown)[:10]}")
            if dim is None:
                meta.put(session, meta.VECTOR_DIM, matrix.shape[1])
            had = vector_rows.ids_with_vectors(session, ids)
            vector_rows.upsert_many(session, ids, matrix)
            photos.mark_indexed(session, ids, datetime.now(timezone.utc).replace(tzinfo=None))
            for pid, vector in zip(ids, matrix):
                tx.vectors.upsert(pid, vector, had_vector=pid in had)

    def clear_vectors(self) -> None:
        """Drop every vector (e.g. the model changed): indexed photos become pending."""
        with self._write() as tx:
            vector_rows.delete_all(tx.session)
            tags.delete_all(tx.session)  # they came from the same model
            meta.remove(tx.session, meta.VECTOR_DIM)
            photos.demote_indexed(tx.session)
            tx.vectors.clear()

    def get_vector(self, pid: int) -> np.ndarray | None:
        """Photo ``pid``'s stored search vector, float32 ``(D,)``, or None if it has none."""
        with self._read() as session:
            return vector_rows.load_one(session, pid)

    def ids_and_vectors(self) -> tuple[np.ndarray, np.ndarray | None]:
        """All stored ``(ids, vectors)`` by id: int64 ``(N,)`` and float32 ``(N, D)``
        (vectors None when there are none)."""
        with self._read() as session:
            return vector_rows.load_all(session)

    # -- search ------------------------------------------------------------------------------
    def search(
        self, query_vec: np.ndarray, k: int, under: PathLike | None = None,
        *, where: SearchFilter | None = None, exclude: int | None = None,
    ) -> list[SearchHit]:
        """Top-``k`` searchable photos by inner product with ``query_vec`` (float32 ``(D,)``),
        best first, among those ``where`` lets through (``under``: only photos inside that
        folder, a shorthand for ``where=SearchFilter(folder=under)``), never photo ``exclude``."""
        self._check_open()
        where = _combined(where, under)
        return search_hits(self._scope.read, self._vectors, query_vec, k, where, exclude)

    def similar(
        self, pid: int, k: int, under: PathLike | None = None, *, where: SearchFilter | None = None
    ) -> list[SearchHit]:
        """Top-``k`` photos most like photo ``pid`` (its own vector as the query), minus itself."""
        vector = self.get_vector(pid)
        if vector is None:
            raise PhotoNotFoundError(f"photo {pid} has no vector (unknown, or not indexed yet)")
        return self.search(vector, k, under, where=where, exclude=pid)

    def browse(self, where: SearchFilter | None = None, offset: int = 0, limit: int = 50) -> list[PhotoRecord]:
        """One page of the indexed photos ``where`` lets through, newest taken first."""
        self._check_open()
        with self._read() as session:
            return photos.browse(session, where or SearchFilter(), offset, limit)

    def count_searchable(self, where: SearchFilter | None = None) -> int:
        """How many indexed photos ``where`` lets through."""
        self._check_open()
        with self._read() as session:
            return photos.count_searchable(session, where or SearchFilter())

    # -- upkeep ------------------------------------------------------------------------------
    def save_index(self) -> None:
        """Write ``vectors.faiss`` atomically (IndexSaveError if it fails; old file intact).
        Queries go on while it writes; commits wait for it."""
        self._check_open()
        if self.read_only:
            raise ReadOnlyError("this library was opened read-only")
        self._vectors.save()

    def save_index_if_due(self) -> bool:
        """Save ``vectors.faiss`` if the vector changes since the last save reach the index's
        size then (so indexing N photos writes O(N) bytes); returns whether it saved. For
        periodic saves while indexing; ``save_index`` and ``close`` always save."""
        self._check_open()
        if self.read_only:
            raise ReadOnlyError("this library was opened read-only")
        return self._vectors.save(only_if_due=True)

    @property
    def index_warning(self) -> str | None:
        """Read-only libraries: one line saying the search index is behind the library (or
        unusable) and which command refreshes it; None when it is current."""
        return self._vectors.stale

    def check_index(self) -> str | None:
        """Why the FAISS index does not mirror the vectors in SQLite, or None when it does
        (every id once, each with its stored vector). Reads every vector: for tests and audits."""
        self._check_open()
        return self._vectors.mismatch()


def _combined(where: SearchFilter | None, under: PathLike | None) -> SearchFilter | None:
    if under is None:
        return where
    return (where or SearchFilter()).with_folder(os.fspath(under))
