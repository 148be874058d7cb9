"""SQL operations on the ``hashes`` table: each photo's perceptual hash (all take an open
session; none commit). The indexer computes them (``indexer.perceptual_hash``); near-duplicate
search confirms its candidates with them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.orm import Session

from .photos import CHUNK
from .records import INDEXED
from .tables import HashRow, PhotoRow


def replace(session: Session, hashes: Mapping[int, int | None]) -> None:
    """Photo id -> its hash (a signed 64-bit int; None: it has none any more)."""
    ids = [int(pid) for pid in hashes]
    for start in range(0, len(ids), CHUNK):
        session.execute(delete(HashRow).where(HashRow.photo_id.in_(ids[start:start + CHUNK])))
    rows = [{"photo_id": int(pid), "phash": int(h)} for pid, h in hashes.items() if h is not None]
    if rows:
        session.execute(insert(HashRow), rows)


def of(session: Session, ids: Iterable[int]) -> dict[int, int]:
    """Photo id -> its hash, for the photos that have one."""
    found: dict[int, int] = {}
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(select(HashRow.photo_id, HashRow.phash).where(HashRow.photo_id.in_(ids[start:start + CHUNK])))
        found.update((pid, phash) for pid, phash in rows)
    return found


def count_missing(session: Session) -> int:
    """Indexed photos without a hash (indexed before schema v5)."""
    has_hash = exists().where(HashRow.photo_id == PhotoRow.id)
    return session.scalar(select(func.count()).where(PhotoRow.status == INDEXED, ~has_hash))
