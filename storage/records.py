"""Plain data records that cross the storage boundary (never ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

INDEXED = "indexed"  # has a search vector and is returned by searches
PENDING = "pending"  # known, waiting for (re)embedding
FAILED = "failed"  # could not be decoded or embedded; ``error`` says why
MISSING = "missing"  # its root folder is gone (unmounted): kept, but hidden from searches
STATUSES = (INDEXED, PENDING, FAILED, MISSING)


@dataclass(frozen=True)
class PhotoRecord:
    """One photo as stored in the library.

    Datetimes are naive: ``indexed_at`` is UTC; ``taken_at`` is the local wall time the photo
    was taken, from EXIF (``taken_source`` "exif") or else the file's mtime in this machine's
    time zone ("mtime"); ``taken_offset`` is its UTC offset in minutes when known.
    ``id`` is ``None`` for a record that has not been stored yet.
    """

    path: str  # absolute path as the indexer stores it; unique
    size: int  # bytes
    mtime: float  # seconds since the epoch (os.stat st_mtime)
    fingerprint: str  # content hash, used to recognise moved/copied files
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None
    taken_offset: int | None = None  # minutes east of UTC (EXIF OffsetTimeOriginal), if known
    taken_source: str | None = None  # "exif" or "mtime"
    indexed_at: datetime | None = None
    model_fingerprint: str | None = None  # model that produced the stored vector
    status: str = PENDING
    error: str | None = None  # why the photo failed, for FAILED photos
    id: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def taken_iso(record: PhotoRecord) -> str | None:
    """``record.taken_at`` in ISO 8601, with its UTC offset when known
    (``2023-06-14T12:34:56+02:00``), else as local time (``2023-06-14T12:34:56``); None if unknown."""
    if record.taken_at is None:
        return None
    text = record.taken_at.replace(microsecond=0).isoformat()
    if record.taken_offset is None:
        return text
    sign, minutes = ("-" if record.taken_offset < 0 else "+"), abs(record.taken_offset)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class SearchHit:
    """One search result: the photo and its inner-product score with the query."""

    photo: PhotoRecord
    score: float


@dataclass(frozen=True)
class RootRecord:
    """A watched root folder; ``present`` is False while it is unmounted or gone."""

    path: str
    present: bool
    added_at: datetime
