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

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from . import meta, photos, roots, vector_rows
from .database import make_engine, storage_errors
from .errors import IndexSaveError, StorageError
from .library_core import PathLike
from .library_groups import GroupMethods
from .library_photos import PhotoMethods
from .library_tags import TagMethods
from .library_vectors import VectorMethods
from .migrations import migrate, require_current
from .privacy import create_private_file, secure_folder
from .records import STATUSES
from .vector_index import IndexConfig

DB_NAME = "library.sqlite"


class Library(PhotoMethods, VectorMethods, TagMethods, GroupMethods):
    """A photo library stored in a folder (``open``) or in memory (``in_memory``).

    Its methods come in groups: photos, roots and meta (``library_photos``), vectors, search
    and index upkeep (``library_vectors``), automatic tags (``library_tags``), copies and
    near-duplicates (``library_groups``), the transaction scope (``library_core``); opening,
    closing and ``stats`` are here.
    """

    @classmethod
    def open(
        cls, folder: PathLike, *, index: IndexConfig = IndexConfig(), read_only: bool = False
    ) -> Library:
        """Open (creating if needed) the library in ``folder``; upgrade an older schema.

        A writer repairs a missing, corrupt or stale ``vectors.faiss`` from the database (it
        catches a stale one up row by row, rebuilds the others) and saves it;
        ``stats()["index_repair"]`` then says why. ``read_only`` libraries never write nor
        build: they map the file and serve it even when it is behind the database, with
        ``index_warning`` saying so (e.g. a query process while the daemon runs).
        The folder is made private to this account (``storage.privacy``); one that another
        account owns raises ``ForeignLibraryError``.
        """
        folder = Path(folder).expanduser()
        db_path = folder / DB_NAME
        if read_only and not db_path.exists():
            raise StorageError(f"no photo library at {folder} (no {DB_NAME})")
        secure_folder(folder, create=not read_only)  # 0700/0600; another account's: refused
        if not read_only:
            try:
                create_private_file(db_path)
            except OSError as exc:
                raise StorageError(f"cannot create {db_path}: {exc.strerror}") from exc
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
                try:
                    library._vectors.save()
                except IndexSaveError:
                    pass  # e.g. a full disk: the rebuilt index serves from memory and is saved later
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
