"""Which storage failures are passing faults of the machine, not bugs or bad data.

A write to the library (a SQLite commit, the FAISS file, a lock file) can fail because the
disk is full, another program holds SQLite's write lock, the disk reports an I/O error or
the file system went read-only. None of these is the fault of a photo or of the code, and
each can pass (space is freed, the other program commits, the drive is remounted): the
indexer waits and tries again rather than giving up on photos or ending the daemon.

``storage_fault`` names the fault in a few words, whatever layer it surfaced through: an
``OSError`` (by errno), a ``sqlite3`` error (by SQLite's result code), a FAISS
``RuntimeError`` (by the C library's words in it), or a ``StorageError`` raised from any
of these (by its cause).
"""

from __future__ import annotations

import errno
import os
import sqlite3

DISK_FULL = "disk full"
LOCKED = "database is locked"
IO_ERROR = "disk I/O error"
READ_ONLY = "read-only file system"

_ERRNOS = {errno.ENOSPC: DISK_FULL, errno.EDQUOT: DISK_FULL, errno.EROFS: READ_ONLY, errno.EIO: IO_ERROR}
_SQLITE_CODES = {13: DISK_FULL, 5: LOCKED, 6: LOCKED, 10: IO_ERROR, 8: READ_ONLY}  # FULL, BUSY, LOCKED, IOERR, READONLY
_WORDS = {  # what SQLite, the C library and FAISS put in their messages
    "database or disk is full": DISK_FULL,
    "no space left on device": DISK_FULL,
    "disk quota exceeded": DISK_FULL,
    "database is locked": LOCKED,
    "database table is locked": LOCKED,
    "disk i/o error": IO_ERROR,
    "input/output error": IO_ERROR,
    "read-only file system": READ_ONLY,
    "attempt to write a readonly database": READ_ONLY,
}


ROOM_BYTES = 256 * 1024  # less free space than this where the library lives: "disk full"


def storage_fault(exc: BaseException | None, folder: str | os.PathLike | None = None) -> str | None:
    """The passing storage fault behind `exc` (one of DISK_FULL, LOCKED, IO_ERROR,
    READ_ONLY), or None when `exc` is something else (a bug, bad data, a missing file).

    Follows `__cause__` (``raise ... from``), so a StorageError raised from SQLAlchemy's
    OperationalError raised from sqlite3's is classified by the innermost one; an error
    merely raised while handling a fault (`__context__`) is not taken for one.

    SQLite reports a full disk as a "disk I/O error" when it cannot grow its shared-memory
    file (``-shm``); given the library's `folder`, an I/O error there while its file system
    has (almost) no room left is called what it is: DISK_FULL.
    """
    fault = _fault_in_chain(exc)
    if fault == IO_ERROR and folder is not None and _no_room(folder):
        return DISK_FULL
    return fault


def _no_room(folder: str | os.PathLike) -> bool:
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < ROOM_BYTES


def _fault_in_chain(exc: BaseException | None) -> str | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        fault = _own_fault(exc)
        if fault is not None:
            return fault
        exc = exc.__cause__
    return None


def _own_fault(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno in _ERRNOS:
        return _ERRNOS[exc.errno]
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; the words below otherwise
        if code is not None and code & 0xFF in _SQLITE_CODES:
            return _SQLITE_CODES[code & 0xFF]
    if isinstance(exc, (OSError, sqlite3.Error, RuntimeError)) or type(exc).__module__.startswith("sqlalchemy"):
        text = str(exc).lower()
        return next((fault for words, fault in _WORDS.items() if words in text), None)
    return None
