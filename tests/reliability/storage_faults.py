"""Real storage faults for the reliability tests: another process holding SQLite's write
lock, and a small file system (a tmpfs mounted for the test) that fills up."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from photosearch.storage import database

LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
db.execute("BEGIN IMMEDIATE")  # SQLite's write lock, as any other program writing the file
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


class LockHolder:
    """A second process that takes the library database's write lock and keeps it `hold_s`."""

    def __init__(self, db_path: Path, hold_s: float):
        self.proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db_path), str(hold_s)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"
        self.since = time.monotonic()

    def wait(self) -> float:
        """Until it lets go; how long it held the lock, in seconds."""
        self.proc.wait(120)
        self.proc.stdout.close()
        return time.monotonic() - self.since

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()


@contextlib.contextmanager
def lock_holders():
    """Start `LockHolder`s through the yielded function; any left running are killed."""
    started: list[LockHolder] = []

    def hold(db_path: Path, hold_s: float) -> LockHolder:
        started.append(LockHolder(db_path, hold_s))
        return started[-1]

    try:
        yield hold
    finally:
        for holder in started:
            holder.kill()


@pytest.fixture
def short_busy_timeout(monkeypatch):
    """Writers give up on a lock after 0.3 s instead of 30 s: a lock held for a few seconds
    is then what a lock held past the real timeout (e.g. 45 s) is to a real run."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 300)


class SmallDisk:
    """A tmpfs of `size_kb` mounted at `path`; `fill(leave_kb)` takes all but that much."""

    def __init__(self, path: Path):
        self.path = path
        self.filler = path / "filler"

    def free_kb(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize // 1024

    def fill(self, leave_kb: int) -> None:
        """Write a filler file until only `leave_kb` KB are left."""
        with open(self.filler, "ab") as fh:
            fh.write(b"\0" * max(0, self.free_kb() - leave_kb) * 1024)
        assert self.free_kb() <= leave_kb + 4, self.free_kb()

    def make_room(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path):
    """A real, small file system (tmpfs, 1 MB). Mounting needs root: elsewhere the test is
    skipped with the reason."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a 1 MB tmpfs needs root (the disk-full tests use a real full file system)")
    mount = tmp_path / "small_disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MB tmpfs here: {done.stderr.strip()}")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
