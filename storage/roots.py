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


def _to_record(row: RootRow) -> RootRecord:
    return RootRecord(path=row.path, present=row.present, added_at=row.added_at)


def add(session: Session, path: str) -> RootRecord:
    row = session.scalars(select(RootRow).where(RootRow.path == path)).first()
    if row is None:
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
