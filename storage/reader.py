"""``LibraryReader``: a read-only view of a library through Python's own ``sqlite3``.

Importing SQLAlchemy costs ~0.25 s, half of a cold ``photosearch query`` (measured with
``python -X importtime`` on the 2-core AVX2/AVX-512 machine). A query without a daemon
needs very little of the library: a few ``meta`` rows, the saved FAISS index, the ids a
filter allows and the rows of the top hits. ``LibraryReader`` reads exactly that with the
standard library, from a connection opened read-only (``mode=ro``) inside one read
transaction, so every read sees the same committed snapshot (SQLite WAL).

It serves the common case only: a database at this code's schema version whose saved index
is at the database's vector generation. Anything else (a stale or missing index file, a
schema to upgrade, the counts an empty result has to explain) raises
:class:`ReaderUnavailable`, and the caller opens the full ``storage.Library`` instead, which
handles and explains every case. The SQL here mirrors ``storage.photos`` and
``storage.meta``; ``tests/storage/test_reader.py`` checks that both answer alike.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from . import index_file
from .meta_keys import GENERATION, VECTOR_DIM
from .migrations import SCHEMA_VERSION, SCHEMA_VERSION_KEY
from .path_text import from_stored, to_stored
from .records import INDEXED, STATUSES, PhotoRecord, SearchHit
from .search_filter import SearchFilter
from .vector_index import IndexConfig

DB_NAME = "library.sqlite"  # as storage.library.DB_NAME (not imported: that module loads SQLAlchemy)
_COLUMNS = ("id", "path", "size", "mtime", "fingerprint", "width", "height", "taken_at", "taken_offset",
            "taken_source", "indexed_at", "model_fingerprint", "status", "error")
_CHUNK = 900  # ids per "IN (...)", under SQLite's bound-parameter limit


class ReaderUnavailable(Exception):
    """The light reader cannot answer this; open ``storage.Library`` (read-only) instead."""


class LibraryReader:
    """Read-only searches over a library folder without SQLAlchemy (see the module docstring).

    Offers the part of ``Library``'s interface a query needs: ``get_meta``, ``search``,
    ``tags_of``, ``read_only``; ``stats`` and ``tag_counts`` raise :class:`ReaderUnavailable`.
    Not thread-safe.
    """

    read_only = True

    def __init__(self, conn: sqlite3.Connection, index, dim: int | None):
        self._conn, self._index, self._dim = conn, index, dim

    @classmethod
    def open(cls, folder: str | os.PathLike[str], config: IndexConfig = IndexConfig()) -> LibraryReader:
        """Open ``folder``'s library for reading; :class:`ReaderUnavailable` when only the
        full ``Library`` can (no database, another schema version, index file not current)."""
        db_path = Path(folder) / DB_NAME
        if not db_path.is_file():
            raise ReaderUnavailable(f"no {DB_NAME}")
        try:
            conn = sqlite3.connect(f"file:{quote(str(db_path.absolute()))}?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ReaderUnavailable(f"cannot open the database ({exc})") from None
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("BEGIN")  # one snapshot for every read below and after
            reader = cls(conn, None, None)
            if reader.get_meta(SCHEMA_VERSION_KEY) != SCHEMA_VERSION:
                raise ReaderUnavailable("schema version differs from this code's")
            generation = int(reader.get_meta(GENERATION, 0))
            dim = reader.get_meta(VECTOR_DIM)
            index = None
            if dim is not None:
                try:
                    index = index_file.load(Path(folder), config, read_only=True)
                except index_file.IndexFileProblem as exc:
                    raise ReaderUnavailable(f"index file {exc}") from None
                if index.generation != generation or (index.count and index.dim != dim):
                    raise ReaderUnavailable("index file not at the database's generation")
            reader._index, reader._dim = index, dim
            return reader
        except (sqlite3.Error, ValueError, TypeError) as exc:
            conn.close()
            raise ReaderUnavailable(f"unreadable library ({exc})") from None
        except BaseException:
            conn.close()
            raise

    def __enter__(self) -> LibraryReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the read transaction and close the connection. Idempotent."""
        self._conn.close()

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value of ``meta`` row ``key``, or ``default`` (as ``Library.get_meta``)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def stats(self) -> dict[str, Any]:
        """Not offered: the full ``Library`` computes (and explains) the counts."""
        raise ReaderUnavailable("stats need the full library")

    def tag_counts(self) -> list[tuple[str, int]]:
        """Not offered: the full ``Library`` lists them."""
        raise ReaderUnavailable("tag counts need the full library")

    def tags_of(self, ids) -> dict[int, list[tuple[str, float]]]:
        """Photo id -> its tags, most probable first (as ``Library.tags_of``)."""
        ids, found = [int(i) for i in ids], {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            rows = self._conn.execute(
                f"SELECT photo_id, name, probability FROM tags WHERE photo_id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY photo_id, probability DESC, name", chunk)
            for pid, name, probability in rows:
                found.setdefault(pid, []).append((name, probability))
        return found

    def search(self, query_vec: np.ndarray, k: int, under: str | os.PathLike[str] | None = None,
               *, where: SearchFilter | None = None, exclude: int | None = None) -> list[SearchHit]:
        """Top-``k`` searchable photos by inner product with ``query_vec`` (float32 ``(D,)``),
        best first, among those ``where`` lets through (``under``: only photos inside that
        folder), never ``exclude`` (as ``Library.search``). :class:`ReaderUnavailable` for a
        query of another dimension (the full library says why)."""
        query = np.ascontiguousarray(np.asarray(query_vec, dtype=np.float32).reshape(1, -1))  # (1, D)
        if self._index is None or k <= 0:
            return []
        if query.shape[1] != self._dim:
            raise ReaderUnavailable("query dimension differs from the library's")
        if under is not None:
            where = (where or SearchFilter()).with_folder(os.fspath(under))
        allow, deny = self._filter(where or SearchFilter(), exclude)
        ids, scores = self._index.search(query, k, allow, deny)
        found = self._records(ids.tolist())
        return [SearchHit(found[pid], float(score)) for pid, score in zip(ids.tolist(), scores.tolist())
                if pid in found and found[pid].status == INDEXED]

    def count_searchable(self, where: SearchFilter | None = None) -> int:
        """How many indexed photos ``where`` lets through (as ``Library.count_searchable``)."""
        sql, params = _where_sql(where or SearchFilter())
        return self._conn.execute(f"SELECT count(*) FROM photos WHERE {sql}", params).fetchone()[0]

    def _filter(self, where: SearchFilter, exclude: int | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(allow, deny)`` as ``storage.photos.search_filter``."""
        if not where.is_empty:
            sql, params = _where_sql(where)
            rows = self._conn.execute(f"SELECT id FROM photos WHERE {sql}", params)
            allow = np.fromiter((row[0] for row in rows), dtype=np.int64)
            return (allow if exclude is None else allow[allow != exclude]), None
        others = [status for status in STATUSES if status != INDEXED]
        rows = self._conn.execute(
            "SELECT photos.id FROM photos JOIN vectors ON vectors.photo_id = photos.id "
            f"WHERE photos.status IN ({', '.join('?' * len(others))})", others)
        deny = np.fromiter((row[0] for row in rows), dtype=np.int64)
        return None, (deny if exclude is None else np.append(deny, np.int64(exclude)))

    def _records(self, ids: list[int]) -> dict[int, PhotoRecord]:
        found = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            rows = self._conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM photos WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            for row in rows:
                found[row[0]] = _record(dict(zip(_COLUMNS, row)))
        return found


def _where_sql(where: SearchFilter) -> tuple[str, list]:
    """SQL (and its parameters) for the indexed photos ``where`` lets through, as
    ``storage.photos.filter_clauses`` (datetimes compare as SQLAlchemy stores them: ISO text)."""
    sql, params = ["status = ?"], [INDEXED]
    if where.tag is not None:  # as storage.tags.matches: the name, or a name ending in it as a word
        escaped = " " + where.tag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql.append("EXISTS (SELECT 1 FROM tags WHERE tags.photo_id = photos.id"
                   " AND (tags.name = ? OR tags.name LIKE ? ESCAPE '\\'))")
        params += [where.tag, "%" + escaped]
    if where.folder is not None:
        prefix = to_stored(os.path.normpath(os.fspath(where.folder)).rstrip(os.sep) + os.sep)
        sql.append("path >= ? AND path < ?")
        params += [prefix, prefix[:-1] + chr(ord(os.sep) + 1)]
    if where.taken_from is not None:
        sql.append("taken_at >= ?")
        params.append(where.taken_from.strftime("%Y-%m-%d %H:%M:%S.%f"))
    if where.taken_before is not None:
        sql.append("taken_at < ?")
        params.append(where.taken_before.strftime("%Y-%m-%d %H:%M:%S.%f"))
    return " AND ".join(sql), params


def _record(row: dict[str, Any]) -> PhotoRecord:
    """A ``PhotoRecord`` from raw columns (SQLAlchemy stores datetimes as ISO text)."""
    for name in ("taken_at", "indexed_at"):
        if row[name] is not None:
            row[name] = datetime.fromisoformat(row[name])
    row["path"] = from_stored(row["path"])
    if row["error"] is not None:
        row["error"] = from_stored(row["error"])
    return PhotoRecord(**row)
