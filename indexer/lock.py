"""The writer lock of a library folder: one process at a time may index it.

`photosearch watch`, `index` and `reindex` write the library, and the daemon keeps its FAISS
index in memory, so two writers would leave one of them with a stale index. Each writer
holds an exclusive `fcntl.flock` on `daemon.lock` in the library folder for as long as it
runs. The kernel drops the lock when the process dies, even by SIGKILL, so a crashed daemon
never leaves a stale lock behind. The file holds "<pid> <command>" of the holder, for the
message the next one shows.

Stdlib only: `photosearch query` checks for a daemon without importing anything heavy.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

LOCK_NAME = "daemon.lock"


class LockHeld(Exception):
    """Another process holds the library's writer lock; the message names it for the user."""

    user_facing = True

    def __init__(self, path: Path, pid: int | None, command: str):
        self.path = path
        self.pid = pid
        self.command = command
        who = f"photosearch {command}" if command else "another photosearch process"
        super().__init__(f"{who} is already running on the library {path.parent} (pid {pid or '?'}); "
                         f"stop it first (kill {pid or '<pid>'})")


class LockUnavailable(Exception):
    """The lock file cannot be made (a folder that cannot be written, a disk without room)."""

    user_facing = True


class LibraryLock:
    """Exclusive, non-blocking lock on `<folder>/daemon.lock`; a context manager."""

    def __init__(self, folder: str | os.PathLike, command: str):
        self.path = Path(folder) / LOCK_NAME
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the holder; never waits."""
        from photosearch.storage.privacy import secure_folder

        secure_folder(self.path.parent, create=True)  # 0700; another account's folder: refused
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            os.fchmod(fd, 0o600)
        except OSError as exc:
            raise LockUnavailable(f"cannot make the library's lock file {self.path}: {exc.strerror}; "
                                  "free some space there or choose another --library") from None
        for attempt in range(3):  # `holder()` takes the lock shared for a moment: retry briefly
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid, command = read_holder(self.path)
                if pid is not None or attempt == 2:
                    os.close(fd)
                    raise LockHeld(self.path, pid, command) from None
                time.sleep(0.05)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.command}\n".encode(), 0)
        except OSError:
            pass  # e.g. a full disk: the lock is held all the same, only its holder goes unnamed
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with the next holder)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> LibraryLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def holder(folder: str | os.PathLike) -> tuple[int, str] | None:
    """(pid, command) of the process holding the folder's lock, or None if it is free."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid, command = read_holder(path)
        return (pid or 0), command
    finally:
        os.close(fd)  # also releases the shared lock if we got it
    return None


def read_holder(path: Path) -> tuple[int | None, str]:
    """The "<pid> <command>" the holder wrote (it may not have written it yet)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None, ""
    pid, _, command = text.partition(" ")
    return (int(pid) if pid.isdigit() else None), command
