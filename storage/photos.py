"""SQL operations on the ``photos`` table (all take an open session; none commit)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, fields

import numpy as np
from sqlalchemy import ColumnElement, and_, case, exists, func, insert, or_, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from .errors import PathConflictError, PhotoNotFoundError
from .records import FAILED, INDEXED, MISSING, PENDING, STATUSES, PhotoRecord
from .search_filter import SearchFilter
from .tables import PhotoRow, TagRow, VectorRow

_FIELDS = [f.name for f in fields(PhotoRecord) if f.name != "id"]
CHUNK = 900  # ids per "IN (...)" clause, under SQLite's bound-parameter limit


def to_record(row: PhotoRow) -> PhotoRecord:
    return PhotoRecord(id=row.id, **{name: getattr(row, name) for name in _FIELDS})


def under_clause(root: str | os.PathLike[str]) -> ColumnElement[bool]:
    """Photos strictly inside folder ``root``, as a case-sensitive, index-friendly range.

    ``/a/b`` matches ``/a/b/x.jpg`` and ``/a/b/c/y.jpg`` but not ``/a/bc/z.jpg``: every path
    starting with ``"/a/b/"`` sorts in ``["/a/b/", "/a/b0")`` (``"0"`` follows ``"/"``), and SQLite
    compares text byte-wise, which for UTF-8 is code-point order. No LIKE, so ``%``, ``_``
    and letter case in folder names need no escaping. Paths are compared as stored: pass
    ``root`` in the same absolute form the indexer stores paths in.
    """
    prefix = os.path.normpath(os.fspath(root)).rstrip(os.sep) + os.sep
    upper = prefix[:-1] + chr(ord(os.sep) + 1)
    return and_(PhotoRow.path >= prefix, PhotoRow.path < upper)


def get(session: Session, pid: int) -> PhotoRecord | None:
    row = session.get(PhotoRow, pid)
    return None if row is None else to_record(row)


def get_by_path(session: Session, path: str) -> PhotoRecord | None:
    row = session.scalars(select(PhotoRow).where(PhotoRow.path == path)).first()
    return None if row is None else to_record(row)


def require(session: Session, pid: int) -> PhotoRecord:
    record = get(session, pid)
    if record is None:
        raise PhotoNotFoundError(f"no photo with id {pid} in the library")
    return record


def get_many(session: Session, ids: Iterable[int]) -> dict[int, PhotoRecord]:
    found: dict[int, PhotoRecord] = {}
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), CHUNK):
        rows = session.scalars(select(PhotoRow).where(PhotoRow.id.in_(ids[start : start + CHUNK])))
        found.update((row.id, to_record(row)) for row in rows)
    return found


def select_records(session: Session, *where: ColumnElement[bool]) -> list[PhotoRecord]:
    rows = session.scalars(select(PhotoRow).where(*where).order_by(PhotoRow.path))
    return [to_record(row) for row in rows]


def with_fingerprint(session: Session, fingerprint: str) -> list[PhotoRecord]:
    return select_records(session, PhotoRow.fingerprint == fingerprint)


def with_status(session: Session, status: str) -> list[PhotoRecord]:
    return select_records(session, PhotoRow.status == status)


def under(session: Session, root: str | os.PathLike[str]) -> list[PhotoRecord]:
    return select_records(session, under_clause(root))


def delete(session: Session, pid: int) -> bool:
    """Delete the row (its ``vectors`` row goes too: ON DELETE CASCADE)."""
    return session.execute(sql_delete(PhotoRow).where(PhotoRow.id == pid)).rowcount > 0


def demote_indexed(session: Session) -> None:
    """Every ``indexed`` photo becomes ``pending`` (its vectors were dropped)."""
    session.execute(update(PhotoRow).where(PhotoRow.status == INDEXED).values(status=PENDING))


def upsert_many(session: Session, records: Iterable[PhotoRecord]) -> list[int]:
    """Insert each record, or overwrite the row with the same path; return ids in order.

    Two bulk statements (ORM bulk INSERT and bulk UPDATE by primary key), not one per row.
    """
    records = list(records)
    latest = {record.path: record for record in records}  # a repeated path: the last one wins
    ids = ids_by_path(session, list(latest))
    changes = [{name: getattr(r, name) for name in _FIELDS} for r in latest.values()]
    new = [values for values in changes if values["path"] not in ids]
    old = [{"id": ids[values["path"]], **values} for values in changes if values["path"] in ids]
    if new:
        session.execute(insert(PhotoRow), new)
        ids.update(ids_by_path(session, [values["path"] for values in new]))
    if old:
        session.execute(update(PhotoRow), old)
    return [ids[record.path] for record in records]


def ids_by_path(session: Session, paths: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start : start + CHUNK]
        rows = session.execute(select(PhotoRow.path, PhotoRow.id).where(PhotoRow.path.in_(chunk)))
        found.update((path, pid) for path, pid in rows)
    return found


def overwrite(session: Session, record: PhotoRecord) -> PhotoRecord:
    """Overwrite the row ``record.id`` (or, if ``id`` is None, the row at ``record.path``)."""
    if record.id is None:
        existing = get_by_path(session, record.path)
        if existing is None:
            raise PhotoNotFoundError(f"no photo at {record.path} in the library")
        record = PhotoRecord(**{**asdict(record), "id": existing.id})
    require(session, record.id)
    ensure_path_free(session, record.path, record.id)
    values = {name: getattr(record, name) for name in _FIELDS}
    session.execute(update(PhotoRow).where(PhotoRow.id == record.id).values(**values))
    return record


def ensure_path_free(session: Session, path: str, owner: int) -> None:
    other = session.scalar(select(PhotoRow.id).where(PhotoRow.path == path))
    if other is not None and other != owner:
        raise PathConflictError(f"another photo (id {other}) is already stored at {path}")


def set_fields(session: Session, pid: int, **values: object) -> None:
    session.execute(update(PhotoRow).where(PhotoRow.id == pid).values(**values))


def mark_indexed(session: Session, ids: list[int], indexed_at: object) -> int:
    """Set status ``indexed`` on ``ids``; return how many rows exist among them."""
    touched = 0
    for start in range(0, len(ids), CHUNK):
        result = session.execute(
            update(PhotoRow)
            .where(PhotoRow.id.in_(ids[start : start + CHUNK]))
            .values(status=INDEXED, indexed_at=indexed_at, error=None)
        )
        touched += result.rowcount
    return touched


def hide_under(session: Session, root: str) -> int:
    """Mark every photo under ``root`` ``missing``; return how many changed."""
    result = session.execute(
        update(PhotoRow)
        .where(under_clause(root), PhotoRow.status != MISSING)
        .values(status=MISSING)
    )
    return result.rowcount


def unhide_under(session: Session, root: str) -> int:
    """Bring ``missing`` photos under ``root`` back: indexed if they have a vector, else
    failed if they carry an error, else pending. Return how many changed."""
    has_vector = exists().where(VectorRow.photo_id == PhotoRow.id)
    restored = case(
        (has_vector, INDEXED), (PhotoRow.error.is_not(None), FAILED), else_=PENDING
    )
    result = session.execute(
        update(PhotoRow)
        .where(under_clause(root), PhotoRow.status == MISSING)
        .values(status=restored)
    )
    return result.rowcount


def searchable_ids_under(session: Session, root: str) -> np.ndarray:
    """Ids of ``indexed`` photos inside ``root`` (one covering-index range; an id without a
    vector is harmless to FAISS, so no join with ``vectors``)."""
    return searchable_ids(session, SearchFilter(folder=root))


def filter_clauses(where: SearchFilter) -> list[ColumnElement[bool]]:
    """SQL conditions for ``where``'s folder, taken-at range and tag (a photo has the tag when
    one of its automatic tags ``storage.tags.matches`` it: the same name, or a name ending in
    it as a word)."""
    clauses = []
    if where.tag is not None:
        tag = where.tag
        clauses.append(exists().where(
            TagRow.photo_id == PhotoRow.id,
            or_(TagRow.name == tag, TagRow.name.endswith(" " + tag, autoescape=True))))
    if where.folder is not None:
        clauses.append(under_clause(where.folder))
    if where.taken_from is not None:
        clauses.append(PhotoRow.taken_at >= where.taken_from)
    if where.taken_before is not None:
        clauses.append(PhotoRow.taken_at < where.taken_before)
    return clauses


def searchable_ids(session: Session, where: SearchFilter) -> np.ndarray:
    """Ids of the ``indexed`` photos ``where`` lets through, int64 ``(N,)``."""
    ids = session.scalars(select(PhotoRow.id).where(PhotoRow.status == INDEXED, *filter_clauses(where))).all()
    return np.asarray(ids, dtype=np.int64)


def search_filter(
    session: Session, where: SearchFilter | None, exclude: int | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(allow, deny)`` id arrays for a search: with a filter, allow only the indexed photos
    it lets through; without, deny the ones with a vector that are not indexed. Never ``exclude``."""
    if where is not None and not where.is_empty:
        allow = searchable_ids(session, where)
        return (allow if exclude is None else allow[allow != exclude]), None
    deny = hidden_vector_ids(session)
    return None, (deny if exclude is None else np.append(deny, np.int64(exclude)))


def browse(session: Session, where: SearchFilter, offset: int, limit: int) -> list[PhotoRecord]:
    """Indexed photos ``where`` lets through, newest taken first (then by path), one page."""
    rows = session.scalars(
        select(PhotoRow)
        .where(PhotoRow.status == INDEXED, *filter_clauses(where))
        .order_by(PhotoRow.taken_at.desc(), PhotoRow.path)
        .offset(offset)
        .limit(limit)
    )
    return [to_record(row) for row in rows]


def count_searchable(session: Session, where: SearchFilter) -> int:
    """How many indexed photos ``where`` lets through."""
    return session.scalar(select(func.count()).where(PhotoRow.status == INDEXED, *filter_clauses(where)))


def hidden_vector_ids(session: Session) -> np.ndarray:
    """Ids that have a vector but are not ``indexed`` (missing, or pending re-embedding)."""
    others = [status for status in STATUSES if status != INDEXED]  # IN uses the status index
    ids = session.scalars(
        select(PhotoRow.id)
        .join(VectorRow, VectorRow.photo_id == PhotoRow.id)
        .where(PhotoRow.status.in_(others))
    ).all()
    return np.asarray(ids, dtype=np.int64)


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(PhotoRow.status, func.count()).group_by(PhotoRow.status))
    return {status: count for status, count in rows}


def copy_groups(session: Session) -> list[list[PhotoRecord]]:
    """Indexed photos whose content fingerprint another indexed photo shares, one list per
    content (by path), the lists in order of their first path."""
    shared = (select(PhotoRow.fingerprint).where(PhotoRow.status == INDEXED)
              .group_by(PhotoRow.fingerprint).having(func.count() > 1))
    rows = session.scalars(select(PhotoRow).where(PhotoRow.status == INDEXED, PhotoRow.fingerprint.in_(shared))
                           .order_by(PhotoRow.path))
    groups: dict[str, list[PhotoRecord]] = {}
    for row in rows:
        groups.setdefault(row.fingerprint, []).append(to_record(row))
    return list(groups.values())


def one_id_per_content(session: Session) -> np.ndarray:
    """The smallest id of each content fingerprint among indexed photos, sorted."""
    ids = session.scalars(select(func.min(PhotoRow.id)).where(PhotoRow.status == INDEXED)
                          .group_by(PhotoRow.fingerprint)).all()
    return np.sort(np.asarray(ids, dtype=np.int64))
