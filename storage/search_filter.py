"""`SearchFilter`: which photos a search (or a browse) may return, in one small object.

The CLI (`--in`, `--from`, `--to`, `--tag`), the daemon's socket, the web page's JSON API and the
gallery all build one and hand it down unchanged; storage turns it into an allow-list of photo
ids *before* the vector search (``storage.photos.filter_clauses``), so a filtered search still
returns ``k`` hits whenever ``k`` photos match.

Dates are calendar dates of the photo's taken-at time (``PhotoRecord.taken_at``: the local wall
time the camera wrote in EXIF, else the file's modification time in this machine's time zone).
``--from`` and ``--to`` take a year (``2023``), a month (``2023-06``) or a day (``2023-06-14``),
both inclusive: ``--from 2023-06 --to 2023-06`` is the whole of June 2023.

Pure Python (no SQLAlchemy, no FAISS): the CLI imports it on the fast path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
DATE_HELP = "a year (2023), a month (2023-06) or a day (2023-06-14)"


class FilterError(ValueError):
    """A filter value the user typed cannot be read; the message says what is expected."""

    user_facing = True


@dataclass(frozen=True)
class SearchFilter:
    """Only photos inside ``folder``, taken in ``[date_from, date_to]``, tagged ``tag``.

    ``folder`` is an absolute path as photos are stored (real path: links resolved by the
    caller). ``date_from`` / ``date_to`` keep the text the user typed (validated on creation),
    so the filter travels as JSON unchanged; ``taken_from`` / ``taken_before`` are the bounds.
    ``tag`` is an automatic tag name (``storage.tags``; lower case), matching a photo's tag of
    that name or one ending in it as a word ("elephant" finds "indian elephant"). Every field
    None: no filter.
    """

    folder: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    tag: str | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _normalise(value, "--from" if name == "date_from" else "--to"))
        if self.tag is not None:
            object.__setattr__(self, "tag", self.tag.strip().lower() or None)
        if self.taken_from and self.taken_before and self.taken_from >= self.taken_before:
            raise FilterError(f"--from {self.date_from} is after --to {self.date_to}: swap them")

    @property
    def taken_from(self) -> datetime | None:
        """Inclusive lower bound (local wall time), or None."""
        return None if self.date_from is None else _start(self.date_from)

    @property
    def taken_before(self) -> datetime | None:
        """Exclusive upper bound (local wall time): the start of the period after ``date_to``."""
        return None if self.date_to is None else _after(self.date_to)

    @property
    def is_empty(self) -> bool:
        return self.folder is None and self.date_from is None and self.date_to is None and self.tag is None

    def to_request(self) -> dict:
        """The JSON fields a request or an answer carries: under, from, to, tag."""
        return {"under": self.folder, "from": self.date_from, "to": self.date_to, "tag": self.tag}

    @classmethod
    def from_request(cls, request: dict) -> SearchFilter:
        """The filter of a socket or API request (missing fields: no filter). FilterError if bad."""
        values = {}
        for field, key in (("folder", "under"), ("date_from", "from"), ("date_to", "to"), ("tag", "tag")):
            value = request.get(key)
            if value is not None and not isinstance(value, str):
                raise FilterError(f"{key} must be text")
            values[field] = value or None
        return cls(**values)

    def with_folder(self, folder: str | None) -> SearchFilter:
        return SearchFilter(folder, self.date_from, self.date_to, self.tag)

    def describe(self) -> str:
        """E.g. `in /photos/2023, taken 2023-06 to 2023-07`: for messages; '' when empty."""
        parts = [f"in {self.folder}"] if self.folder else []
        if self.date_from or self.date_to:
            parts.append(f"taken {self.date_from or '…'} to {self.date_to or '…'}")
        if self.tag:
            parts.append(f"tagged {self.tag}")
        return ", ".join(parts)


def absolute_folder(folder: str | os.PathLike | None) -> str | None:
    """A folder as photos are stored: absolute, links resolved (`~/Pictures` -> /data/photos)."""
    return None if folder is None else os.path.realpath(os.path.expanduser(os.fspath(folder)))


def _normalise(text: str, option: str) -> str:
    found = _DATE.match(str(text).strip())
    if not found:
        raise FilterError(f"{option} {text!r}: expected {DATE_HELP}")
    year, month, day = (int(part) if part else None for part in found.groups())
    try:
        datetime(year, month or 1, day or 1)
    except ValueError:
        raise FilterError(f"{option} {text!r} is not a real date: expected {DATE_HELP}") from None
    if year < 1800:
        raise FilterError(f"{option} {text!r}: the year must be 1800 or later")
    return f"{year:04d}" + (f"-{month:02d}" if month else "") + (f"-{day:02d}" if day else "")


def _start(text: str) -> datetime:
    parts = [int(part) for part in text.split("-")]
    return datetime(parts[0], *(parts[1:] + [1, 1])[:2])


def _after(text: str) -> datetime:
    """The first moment after the year, month or day `text` names."""
    parts = [int(part) for part in text.split("-")]
    start = _start(text)
    if len(parts) == 1:
        return start.replace(year=start.year + 1)
    if len(parts) == 2:
        return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start + timedelta(days=1)
