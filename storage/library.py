"""``Library``: the photo library (SQLite rows + FAISS vectors) behind one small class.

Transactions: every method runs in the calling thread's open ``lib.transaction()`` if there
is one, else in its own short transaction. FAISS changes are applied only when the SQL
transaction commits, so a rolled-back transaction leaves both stores as they were; searches
see committed vectors only (not ones set earlier in the caller's still-open transaction).

Thread safety: one ``Library`` may be shared by threads (e.g. an indexing worker and a query
server); sessions are per call and the FAISS index sits behind a lock. ``in_memory()``
libraries share a single SQLite connection and are meant for single-threaded tests.

Searchable photos are those with status ``indexed`` and a stored vector. ``set_vectors``
marks photos ``indexed``; ``missing`` photos keep their vectors but are hidden.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from . import meta, photos, roots, vector_rows
from .database import Transaction, TransactionScope, make_engine, storage_errors
from .errors import ClosedError, DimensionError, PhotoNotFoundError, ReadOnlyError, StorageError
from .migrations import migrate, require_current
from .records import FAILED, STATUSES, PhotoRecord, RootRecord, SearchHit
from .search import search_hits
from .vector_index import IndexConfig
from .vector_store import VectorStore

DB_NAME = "library.sqlite"
PathLike = str | os.PathLike[str]


class Library:
    """A photo library stored in a folder (``open``) or in memory (``in_memory``)."""

    def __init__(self, engine: Engine, folder: Path | None, config: IndexConfig, read_only: bool):
        """Use :meth:`open` or :meth:`in_memory` instead."""
        self.folder = folder
        self.read_only = read_only
        self._engine = engine
        self._closed = False
        self._scope = TransactionScope(engine, commit=self._commit)
        self._vectors = VectorStore(folder, config, read=self._scope.read, read_only=read_only)

    @classmethod
    def open(
        cls, folder: PathLike, *, index: IndexConfig = IndexConfig(), read_only: bool = False
    ) -> Library:
        """Open (creating if needed) the library in ``folder``; upgrade an older schema.

        A missing, corrupt or stale ``vectors.faiss`` is rebuilt from the database (and saved,
        unless ``read_only``); ``stats()["index_repair"]`` then says why. ``read_only``
        libraries never write, e.g. for a query process while the indexer daemon runs.
        """
        folder = Path(folder).expanduser()
        db_path = folder / DB_NAME
        if read_only and not db_path.exists():
            raise StorageError(f"no photo library at {folder} (no {DB_NAME})")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the library folder {folder}: {exc.strerror}"
            ) from exc
        return cls._start(make_engine(db_path), folder, index, read_only)

    @classmethod
    def in_memory(cls, *, index: IndexConfig = IndexConfig()) -> Library:
        """A throw-away library (SQLite and FAISS in memory), for tests."""
        return cls._start(make_engine(None), None, index, read_only=False)

    @classmethod
    def _start(cls, engine: Engine, folder: Path | None, config: IndexConfig, read_only: bool):
        try:
            with storage_errors():
                if read_only:
                    require_current(engine)
                else:
                    migrate(engine)
            library = cls(engine, folder, config, read_only)
            library._vectors.load()
            if library._vectors.repair is not None and not read_only:
                library._vectors.save()
        except BaseException:
            engine.dispose()
            raise
        return library

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Save the vector index if it changed, and release the database. Idempotent."""
        if self._closed:
            return
        try:
            if self._vectors.dirty and not self.read_only:
                self._vectors.save()
        finally:
            self._closed = True
            self._engine.dispose()

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The one explicit transaction scope: calls inside join it; all-or-nothing."""
        with self._write():
            yield

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        self._check_open()
        if self.read_only:
            raise ReadOnlyError("this library was opened read-only")
        with self._scope.write() as tx:
            yield tx

    @contextmanager
    def _read(self):
        self._check_open()
        with self._scope.read() as session:
            yield session

    def _commit(self, tx: Transaction) -> None:
        self._vectors.commit(tx)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the library has been closed")

    # -- photos ------------------------------------------------------------------------------
    def add_photo(self, record: PhotoRecord) -> int:
        """Insert ``record``, or overwrite the photo stored at the same path; return its id.
        Its vector, if any, is kept (``set_vectors`` replaces it)."""
        return self.add_photos([record])[0]

    def add_photos(self, records: Iterable[PhotoRecord]) -> list[int]:
        """``add_photo`` for a batch, in bulk statements; ids in the order given."""
        with self._write() as tx:
            return photos.upsert_many(tx.session, records)

    def update_photo(self, record: PhotoRecord) -> PhotoRecord:
        """Overwrite the photo ``record.id`` (or the one at ``record.path`` if id is None)."""
        with self._write() as tx:
            return photos.overwrite(tx.session, record)

    def get(self, pid: int) -> PhotoRecord | None:
        with self._read() as session:
            return photos.get(session, pid)

    def get_by_path(self, path: PathLike) -> PhotoRecord | None:
        with self._read() as session:
            return photos.get_by_path(session, os.fspath(path))

    def find_by_fingerprint(self, fingerprint: str) -> list[PhotoRecord]:
        """Every photo with this content fingerprint (copies, or a moved file's old entry)."""
        with self._read() as session:
            return photos.with_fingerprint(session, fingerprint)

    def photos_under(self, root: PathLike) -> list[PhotoRecord]:
        """Every photo inside folder ``root`` (any status), by path."""
        with self._read() as session:
            return photos.under(session, root)

    def photos_by_status(self, status: str) -> list[PhotoRecord]:
        """E.g. ``photos_by_status("pending")`` or ``("failed")``, by path."""
        if status not in STATUSES:
            raise StorageError(f"unknown status {status!r}; expected one of {STATUSES}")
        with self._read() as session:
            return photos.with_status(session, status)

    def move(self, pid: int, new_path: PathLike) -> PhotoRecord:
        """Change a photo's path, keeping its vector; PathConflictError if the path is taken."""
        new_path = os.fspath(new_path)
        with self._write() as tx:
            record = photos.require(tx.session, pid)
            photos.ensure_path_free(tx.session, new_path, pid)
            photos.set_fields(tx.session, pid, path=new_path)
            return replace(record, path=new_path)

    def remove(self, pid: int) -> bool:
        """Forget a photo and its vector; False if there was no such photo."""
        with self._write() as tx:
            if vector_rows.delete_one(tx.session, pid):
                tx.vectors.remove(pid, had_vector=True)
            return photos.delete(tx.session, pid)

    def mark_failed(
        self, path: PathLike, error: str, size: int, mtime: float, fingerprint: str, **fields: Any
    ) -> int:
        """Record that ``path`` could not be indexed (and drop any old vector); return its id.
        ``fields``: further PhotoRecord fields (width, height, taken_at...)."""
        record = PhotoRecord(
            path=os.fspath(path), size=size, mtime=mtime, fingerprint=fingerprint,
            **fields, status=FAILED, error=error,
        )
        with self._write() as tx:
            (pid,) = photos.upsert_many(tx.session, [record])
            if vector_rows.delete_one(tx.session, pid):
                tx.vectors.remove(pid, had_vector=True)
            return pid

    def mark_missing_under(self, root: PathLike) -> int:
        """Root unmounted or gone: hide its photos (kept, with vectors); return how many."""
        with self._write() as tx:
            roots.set_present(tx.session, roots.normalise(root), False)
            return photos.hide_under(tx.session, os.fspath(root))

    def mark_present_under(self, root: PathLike) -> int:
        """Root is back: restore its missing photos' previous status; return how many."""
        with self._write() as tx:
            roots.set_present(tx.session, roots.normalise(root), True)
            return photos.unhide_under(tx.session, os.fspath(root))

    # -- roots and meta ----------------------------------------------------------------------
    def add_root(self, path: PathLike) -> RootRecord:
        with self._write() as tx:
            return roots.add(tx.session, roots.normalise(path))

    def remove_root(self, path: PathLike) -> bool:
        """Stop watching ``path`` (its photos stay until removed)."""
        with self._write() as tx:
            return roots.remove(tx.session, roots.normalise(path))

    def roots(self) -> list[RootRecord]:
        with self._read() as session:
            return roots.all_roots(session)

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._read() as session:
            return meta.get(session, key, default)

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value (e.g. the model fingerprint) under ``key``."""
        if key in meta.RESERVED:
            raise StorageError(f"meta key {key!r} is maintained by storage itself")
        with self._write() as tx:
            meta.put(tx.session, key, value)

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
            meta.remove(tx.session, meta.VECTOR_DIM)
            photos.demote_indexed(tx.session)
            tx.vectors.clear()

    def get_vector(self, pid: int) -> np.ndarray | None:
        with self._read() as session:
            return vector_rows.load_one(session, pid)

    def ids_and_vectors(self) -> tuple[np.ndarray, np.ndarray | None]:
        """All stored ``(ids, vectors)`` by id (vectors None when there are none)."""
        with self._read() as session:
            return vector_rows.load_all(session)

    # -- search ------------------------------------------------------------------------------
    def search(
        self, query_vec: np.ndarray, k: int, under: PathLike | None = None
    ) -> list[SearchHit]:
        """Top-``k`` searchable photos by inner product with ``query_vec``, best first;
        ``under``: only photos inside that folder."""
        return self._search(query_vec, k, under, exclude=None)

    def similar(self, pid: int, k: int, under: PathLike | None = None) -> list[SearchHit]:
        """Top-``k`` photos most like photo ``pid`` (its own vector as the query), minus itself."""
        vector = self.get_vector(pid)
        if vector is None:
            raise PhotoNotFoundError(f"photo {pid} has no vector (unknown, or not indexed yet)")
        return self._search(vector, k, under, exclude=pid)

    def _search(self, query_vec, k: int, under, exclude: int | None) -> list[SearchHit]:
        self._check_open()
        return search_hits(self._scope.read, self._vectors, query_vec, k, under, exclude)

    # -- upkeep ------------------------------------------------------------------------------
    def save_index(self) -> None:
        """Write ``vectors.faiss`` atomically (IndexSaveError if it fails; old file intact)."""
        self._check_open()
        if self.read_only:
            raise ReadOnlyError("this library was opened read-only")
        self._vectors.save()

    def check_index(self) -> str | None:
        """Why the FAISS index does not mirror the vectors in SQLite, or None when it does
        (every id once, each with its stored vector). Reads every vector: for tests and audits."""
        self._check_open()
        return self._vectors.mismatch()

    def stats(self) -> dict[str, Any]:
        """Counts by status, vectors, dimension, index type, file sizes, and index health."""
        with self._read() as session:
            by_status = photos.counts_by_status(session)
            summary: dict[str, Any] = {
                "photos": sum(by_status.values()),
                "by_status": {status: by_status.get(status, 0) for status in STATUSES},
                "vectors": vector_rows.count(session),
                "dim": meta.get(session, meta.VECTOR_DIM),
                "roots": len(roots.all_roots(session)),
            }
        summary.update(self._vectors.describe())
        summary["db_bytes"] = _db_bytes(self.folder)
        return summary


def _db_bytes(folder: Path | None) -> int:
    if folder is None:
        return 0
    names = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm")
    return sum((folder / name).stat().st_size for name in names if (folder / name).exists())
