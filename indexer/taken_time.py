"""When a photo was taken: EXIF DateTimeOriginal (with OffsetTimeOriginal), else the file's mtime.

The library stores it as a local wall time (what the camera's clock showed, what a person
means by "photos from June 14"), its UTC offset in minutes where known, and where it came
from ("exif" or "mtime"): see `storage.records.PhotoRecord`.

EXIF writes times as `YYYY:MM:DD HH:MM:SS` with no zone; EXIF 2.31 added `OffsetTimeOriginal`
(`+02:00`). Cameras write blanks (`    :  :     :  :  `) or zeros (`0000:00:00 00:00:00`) when
their clock was never set: those, and any other unreadable value, count as no date.
"""

from __future__ import annotations

import re
from datetime import datetime

from PIL import ExifTags, Image

EXIF = "exif"
MTIME = "mtime"
_EXIF_DATE_FORMAT = "%Y:%m:%d %H:%M:%S"
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_OFFSET_TIME_ORIGINAL, _OFFSET_TIME_DIGITIZED = 0x9011, 0x9012  # EXIF 2.31 tags


def exif_taken_at(exif: Image.Exif | None) -> tuple[datetime, int | None] | None:
    """(naive local datetime, UTC offset in minutes or None) from DateTimeOriginal (else
    DateTimeDigitized) and its OffsetTime tag; None when the photo says nothing readable."""
    if exif is None:
        return None
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the photo
        return None
    pairs = ((ExifTags.Base.DateTimeOriginal, _OFFSET_TIME_ORIGINAL),
             (ExifTags.Base.DateTimeDigitized, _OFFSET_TIME_DIGITIZED))
    for date_tag, offset_tag in pairs:
        when = parse_exif_datetime(sub.get(date_tag))
        if when is not None:
            return when, parse_exif_offset(sub.get(offset_tag))
    return None


def parse_exif_datetime(raw) -> datetime | None:
    """`2021:07:04 12:34:56` (bytes or text, NUL-padded) as a naive datetime; None if unreadable."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "ignore")
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.strptime(raw.strip("\x00 ")[:19], _EXIF_DATE_FORMAT)
    except ValueError:
        return None
    return when if when.year >= 1800 else None


def parse_exif_offset(raw) -> int | None:
    """`+02:00` / `-05:30` as minutes east of UTC; None if absent or unreadable."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "ignore")
    found = _OFFSET.match(raw.strip("\x00 ")) if isinstance(raw, str) else None
    if not found:
        return None
    sign, hours, minutes = found.groups()
    total = int(hours) * 60 + int(minutes)
    return (-total if sign == "-" else total) if total <= 14 * 60 and int(minutes) < 60 else None


def from_mtime(mtime: float) -> tuple[datetime, int]:
    """A file time (seconds since the epoch) as (naive local datetime, this zone's offset then)."""
    local = datetime.fromtimestamp(mtime).astimezone()
    return local.replace(tzinfo=None), int(local.utcoffset().total_seconds() // 60)


def taken_fields(photo, mtime: float) -> dict:
    """PhotoRecord fields taken_at/taken_offset/taken_source for a photo whose file has `mtime`.

    `photo` is a decoded or embedded photo (`.taken_at`, `.taken_offset` from EXIF) or a stored
    record of the same content (a copy): its EXIF time is kept, an mtime is this file's own.
    """
    source = getattr(photo, "taken_source", EXIF if photo.taken_at is not None else None)
    if photo.taken_at is not None and source == EXIF:
        return {"taken_at": photo.taken_at, "taken_offset": getattr(photo, "taken_offset", None),
                "taken_source": EXIF}
    when, offset = from_mtime(mtime)
    return {"taken_at": when, "taken_offset": offset, "taken_source": MTIME}
