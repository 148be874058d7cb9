"""What the inotify watches miss, and how the watcher covers it anyway.

watchdog's inotify observer adds one kernel watch per folder. When one cannot be added
(more folders than `fs.inotify.max_user_watches`: ENOSPC), watchdog skips that folder in
silence, and when the kernel's event queue overflows (IN_Q_OVERFLOW) it only logs a warning
and rebuilds its watches: the events themselves are lost. `CoveringObserver` is the inotify
observer with those two places (and a watch that disappears while its folder is still there)
reported to a `Coverage`:

- `Coverage.cannot_watch(folder)`: the folder joins `unwatched()`, said once in the log; the
  watcher polls those folders every `poll_s` seconds (`poll`: a stat of each photo in them,
  compared with the previous poll), so their changes are found late but found.
- `Coverage.missed(folder)`: events under `folder` may have been lost; the watcher rescans
  it (`take_rescans`) with `Scanner.sync_paths`.

Off Linux (no inotify) the platform's observer is used and nothing is reported.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Iterable

from photosearch.indexer.folders import PathFilter, is_under, walk_photos

log = logging.getLogger(__name__)

POLL_UNWATCHED_S = 30.0  # default seconds between two polls of the folders inotify cannot watch


class Coverage:
    """The folders inotify does not cover (thread-safe: watchdog's threads report here).

    `to_library(path)` turns a path as watched (a symlink's target) into the path the
    library knows it by (through the link); identity by default.
    """

    def __init__(self, poll_s: float = POLL_UNWATCHED_S,
                 to_library: Callable[[str], str] = lambda path: path, told: threading.Event | None = None):
        """`told`: set once the watch limit has been said; a daemon passes one Event to each
        watcher it starts, so a restarted watcher does not say it again."""
        self.poll_s = poll_s
        self._told_event = told if told is not None else threading.Event()
        self.to_library = to_library
        self._lock = threading.Lock()
        self._unwatched: set[str] = set()
        self._rescans: set[str] = set()
        self._seen: dict[str, dict[str, tuple]] = {}  # folder -> {photo: (size, mtime)} last poll
        self._next_poll = 0.0

    def cannot_watch(self, folder: str) -> None:
        """inotify could not watch `folder`: poll it from now on (said once in the log)."""
        folder = self.to_library(folder)
        with self._lock:
            if folder in self._unwatched:
                return
            self._unwatched.add(folder)
            first = not self._told_event.is_set()
            self._told_event.set()
            self._next_poll = min(self._next_poll, time.monotonic())  # look at it soon
        if first:
            log.warning("cannot watch %s and maybe more folders: the inotify watch limit "
                        "(fs.inotify.max_user_watches) is reached; they are polled every %g s "
                        "instead (`photosearch status` lists them)", folder, self.poll_s)

    def missed(self, folder: str, why: str) -> None:
        """Events under `folder` may have been lost (`why`): it is rescanned."""
        folder = self.to_library(folder)
        log.warning("%s: rescanning %s", why, folder)
        with self._lock:
            self._rescans.add(folder)

    def unwatched(self) -> list[str]:
        """The folders inotify does not watch (polled instead), sorted."""
        with self._lock:
            return sorted(self._unwatched)

    def take_rescans(self) -> list[str]:
        """The folders to rescan (taken out), outermost only."""
        with self._lock:
            folders, self._rescans = self._rescans, set()
        return _outermost(folders)

    def poll(self, path_filter: PathFilter, roots: list[str], now: float) -> list[str]:
        """If a poll is due: the photos in unwatched folders that appeared, changed or went
        since the last poll (every photo there at a folder's first poll: sync skips the
        unchanged ones by their size and mtime)."""
        with self._lock:
            if now < self._next_poll or not self._unwatched:
                return []
            self._next_poll = now + self.poll_s
            gone = {f for f in self._unwatched if not os.path.isdir(f)}
            self._unwatched -= gone
            folders = _outermost(self._unwatched)
        changed, seen = [], {}
        for folder in folders:
            root = next((r for r in roots if is_under(folder, r)), None)
            found = seen[folder] = {photo.path: (photo.size, photo.mtime) for photo
                                    in walk_photos(folder, path_filter, _log_error, root)}
            previous = self._seen.get(folder, {})
            changed += [p for p, state in found.items() if previous.get(p) != state]
            changed += [p for p in previous if p not in found]
        self._seen = seen
        return sorted(changed)


def _outermost(folders: Iterable[str]) -> list[str]:
    out: list[str] = []
    for folder in sorted(folders):
        if not any(is_under(folder, kept) for kept in out):
            out.append(folder)
    return out


def _log_error(path: str, reason: str) -> None:
    log.warning("cannot read %s: %s", path, reason)


def covering_observer(coverage: Coverage):
    """An observer that reports what it cannot watch or may have missed to `coverage`."""
    try:
        from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
    except ImportError:  # not Linux
        from watchdog.observers import Observer

        return Observer()

    class Group(InotifyWatchGroup):
        def _add_callback(self, path: bytes) -> None:
            super()._add_callback(path)  # raises for the scheduled folder, else skips in silence
            if path not in self._active_callbacks_by_path and os.path.isdir(path) \
                    and os.access(path, os.R_OK | os.X_OK):
                coverage.cannot_watch(os.fsdecode(path))

        def on_queue_overflow(self) -> None:
            super().on_queue_overflow()
            if self.is_active:
                coverage.missed(os.fsdecode(self.path), "inotify queue overflow, events were lost")

        def on_watch_deleted(self, wd) -> None:
            path = self._active_callbacks_by_watch.get(wd)
            super().on_watch_deleted(wd)
            if self.is_active and path is not None and os.path.isdir(path):
                coverage.missed(os.fsdecode(path), "a watch disappeared")  # e.g. a remount

    class Emitter(InotifyEmitter):
        def on_thread_start(self) -> None:
            self._inotify = Group(self._inotify_fd, os.fsencode(self.watch.path),
                                  is_recursive=self.watch.is_recursive,
                                  event_mask=self.get_event_mask_from_filter(),
                                  follow_symlink=self.watch.follow_symlink)

    observer = InotifyObserver()
    observer._emitter_class = Emitter  # noqa: SLF001 - the one way in: watchdog has no hook
    return observer
