"""SQL operations on the ``roots`` table of watched folders."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .records import RootRecord
from .tables import RootRow


def normalise(path: str | os.PathLike[str]) -> str:
    return os.path.normpath(os.fspath(path))


def canonical(path: str | os.PathLike[str]) -> str:
    """The folder's real path: symlinks, ``..`` and trailing slashes resolved."""
    return os.path.realpath(os.fspath(path))


def inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies inside it (compared as text)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def same_folder(a: str, b: str) -> bool:
    """Two names of one folder on disk (e.g. a bind mount); False if either is unreadable."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _to_record(row: RootRow) -> RootRecord:
    return RootRecord(path=row.path, present=row.present, added_at=row.added_at)


def add(session: Session, path: str) -> RootRecord:
    """Register folder ``path`` (pass it ``canonical``) unless a root covers it already.

    Roots never overlap: a root that is ``path``, holds it, or is the same folder under
    another name is returned instead; roots inside ``path`` are merged into it (their rows
    go, their photos' paths already lie inside ``path``).
    """
    rows = list(session.scalars(select(RootRow).order_by(RootRow.path)))
    for row in rows:
        if inside(path, row.path) or same_folder(path, row.path):
            return _to_record(row)
    for row in rows:
        if inside(row.path, path):
            session.delete(row)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    row = RootRow(path=path, present=True, added_at=now)
    session.add(row)
    session.flush()
    return _to_record(row)


def remove(session: Session, path: str) -> bool:
    return session.execute(delete(RootRow).where(RootRow.path == path)).rowcount > 0


def set_present(session: Session, path: str, present: bool) -> None:
    session.execute(update(RootRow).where(RootRow.path == path).values(present=present))


def all_roots(session: Session) -> list[RootRecord]:
    return [_to_record(row) for row in session.scalars(select(RootRow).order_by(RootRow.path))]
