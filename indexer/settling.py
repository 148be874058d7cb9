"""Debouncing for the watcher: paths wait until their state on disk holds still.

A path is *settled* when its size and mtime (or its being a folder, or its absence) have not
changed for `settle_s` seconds, so a photo still being copied is never embedded half-written.
A settled folder is expanded into its photos, each settled on its own. Settled deletions are
held back while any new file is still settling (for at most `hold_deletes_s` seconds), so
that a photo moved between two watched roots (seen as delete + create) can be recognised as
a move by its fingerprint. All times are `time.monotonic()` seconds.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass
class _Pending:
    deadline: float  # monotonic time at which to look again
    snapshot: tuple | None  # (size, mtime_ns), ("folder",) or None when absent
    since: float  # when this path first became pending


class SettlingPaths:
    """The paths waiting to settle; `watch` adds one, `settled` takes out those that are.

    `expand_folder(path)` lists the photo files inside a settled folder (absolute paths).
    Not thread-safe: the watcher's worker thread is its only user.
    """

    def __init__(
        self, settle_s: float, hold_deletes_s: float, expand_folder: Callable[[str], Iterable[str]]
    ):
        self.settle_s = settle_s
        self.hold_deletes_s = hold_deletes_s
        self.expand_folder = expand_folder
        self._pending: dict[str, _Pending] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def __len__(self) -> int:
        return len(self._pending)

    def watch(self, path: str, delay: float | None = None) -> None:
        """(Re)start `path`'s wait: look again after `delay` seconds (default `settle_s`)."""
        now = time.monotonic()
        since = self._pending[path].since if path in self._pending else now
        wait = self.settle_s if delay is None else delay
        self._pending[path] = _Pending(now + wait, snapshot(path), since)

    def forget(self, path: str) -> None:
        """Stop waiting for `path` (e.g. it was moved away); no error if it was not pending."""
        self._pending.pop(path, None)

    def settled(self, now: float) -> tuple[list[str], list[str]]:
        """Take out the paths whose state held still for settle_s: (present ones, deleted ones).

        `now` is `time.monotonic()`. A settled folder is replaced by its photos, which start
        their own wait.
        """
        ready, deletes, unsettled = [], [], False
        for path, pending in list(self._pending.items()):
            if now < pending.deadline:
                unsettled = unsettled or pending.snapshot is not None
                continue
            current = snapshot(path)
            if current != pending.snapshot:
                pending.snapshot, pending.deadline = current, now + self.settle_s
                unsettled = unsettled or current is not None
            elif current == ("folder",):
                del self._pending[path]
                for photo in self.expand_folder(path):
                    self.watch(photo)
                unsettled = True
            elif current is None:
                deletes.append(path)
            else:
                ready.append(path)
                del self._pending[path]
        held = [p for p in deletes if now - self._pending[p].since < self.hold_deletes_s]
        if unsettled and held:
            deletes = [p for p in deletes if p not in held]
        for path in deletes:
            del self._pending[path]
        return ready, deletes


def snapshot(path: str) -> tuple | None:
    """What settling compares: `(size, mtime_ns)` for a file, `("folder",)`, or None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if os.path.isdir(path):
        return ("folder",)
    return (st.st_size, st.st_mtime_ns)
