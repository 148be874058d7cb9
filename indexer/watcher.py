"""Keeping the library current while folders change: watchdog events, debounced.

Two halves, as in watchdog's debounced example:

- `PhotoEventHandler` (in `indexer.photo_events`) runs on watchdog's thread. It only
  filters (photo extensions, hidden and junk folders, exclude globs) and puts `Change`s on
  a queue; it never touches the disk or the library.
- `Watcher`'s worker thread drains the queue into a set of pending paths and applies them
  through the scanner (`Scanner.sync_paths` / `Scanner.move_path`, so the watcher has no
  reconciliation logic of its own) once they have settled (`indexer.settling`): a file is
  ready when its size and mtime have not changed for `settle_s`, so a photo still being
  copied is never embedded half-written. A new folder is expanded into its files, each
  settled on its own.

Deletions wait until no new file is still settling (at most `hold_deletes_s`), so a photo
moved between two watched roots (seen as delete + create) is recognised as a move by its
fingerprint instead of being removed and re-embedded. A root that disappears (drive
unplugged) goes through `Scanner.scan`, which marks its photos missing instead of removing.

What inotify does not see is covered too: symlinked folders' targets get watches of their
own (`indexer.links`); folders past the inotify watch limit are polled every
`poll_unwatched_s`, and a folder whose events may have been lost (queue overflow, a watch
that disappeared) is rescanned (`indexer.coverage`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Callable, Iterable, Iterator

from photosearch.storage import StorageError

from photosearch.indexer.coverage import POLL_UNWATCHED_S, Coverage, covering_observer
from photosearch.indexer.folders import is_under, walk_photos
from photosearch.indexer.links import LinkWatches
from photosearch.indexer.photo_events import (  # noqa: F401 - names importable from here too
    CHANGED, DELETED, FOLDER, LINK, MOVED, Change, PhotoEventHandler,
)
from photosearch.indexer.scanner import ScanReport, Scanner
from photosearch.indexer.settling import SettlingPaths
from photosearch.indexer.write_faults import Retries

log = logging.getLogger(__name__)

RETRY_S = 1.0  # first pause before a batch that could not be written (disk full, database locked)
RETRY_CAP_S = 60.0  # ... doubling after each failed try, up to this


class Watcher:
    """Watches `roots` and applies settled changes in batches; `start`/`stop` or `with`."""

    def __init__(
        self,
        scanner: Scanner,
        roots: Iterable[str | os.PathLike],
        *,
        settle_s: float = 1.0,
        hold_deletes_s: float = 30.0,
        batch_size: int = 64,
        save_interval_s: float = 60.0,
        poll_unwatched_s: float = POLL_UNWATCHED_S,
        on_report: Callable[[ScanReport], None] | None = None,
        unwatched_told: threading.Event | None = None,
    ):
        self.scanner = scanner
        self.roots = [os.path.abspath(r) for r in roots]
        self.batch_size = batch_size
        self.save_interval_s = save_interval_s
        self.on_report = on_report
        self.changes: queue.Queue[Change] = queue.Queue()
        # Knowing the library's roots and their bind-mount aliases before the first event.
        scanner.path_filter = scanner.path_filter.with_roots(
            [root.path for root in scanner.lib.roots()] + self.roots)
        self.handler = PhotoEventHandler(self.changes, self.roots, scanner.path_filter)
        self.coverage = Coverage(poll_unwatched_s, lambda path: self.links.to_library(path), unwatched_told)
        self.links = LinkWatches(self.roots, scanner.path_filter, self.handler,
                                 self.coverage.cannot_watch)
        self.handler.links = self.links.links
        self._settling = SettlingPaths(settle_s, hold_deletes_s, self._photos_in)
        self._stop = threading.Event()
        self._observer = None
        self._worker: threading.Thread | None = None
        self._last_save = time.monotonic()
        self._dirty = False
        # changes waiting for a library they can be written to; `retries.waiting()` for status
        self.retries = Retries(log, RETRY_S, RETRY_CAP_S, getattr(scanner.lib, "folder", None))
        self._save_failure: str | None = None  # the last save's error, said once
        self._busy = False  # a change has been taken off the queue and is not applied yet
        self._poll_s = min(0.2, max(0.05, settle_s / 2))  # queue wait per worker step

    def start(self, scan_first: bool = False) -> None:
        """Start observing (roots that do not exist are skipped) and the worker thread.

        `scan_first`: the worker runs a full `Scanner.scan` of the roots before applying
        events, so nothing that changed between a previous scan and now is missed.
        """
        if self._worker is not None:
            raise RuntimeError("watcher already started")
        self._stop.clear()
        self._busy = scan_first  # not idle until the first scan is done
        observer = covering_observer(self.coverage)
        try:
            for root in self.roots:
                if os.path.isdir(root):
                    observer.schedule(self.handler, root, recursive=True)
                else:
                    log.warning("not watching %s: folder not found", root)
            observer.start()
        except BaseException:
            observer.stop()
            raise
        self._observer = observer
        self._worker = threading.Thread(
            target=self._run, args=(scan_first,), name="photo-watcher", daemon=True
        )
        self._worker.start()

    def stop(self) -> None:
        """Stop observing, let the worker finish its current batch, join both threads."""
        self._stop.set()
        try:
            if self._observer is not None:
                self._observer.stop()
                self._observer.join()
        finally:
            self._observer = None
            if self._worker is not None:
                self._worker.join()
                self._worker = None

    @property
    def settle_s(self) -> float:
        """Seconds a path's size and mtime must hold still before it is applied."""
        return self._settling.settle_s

    @settle_s.setter
    def settle_s(self, value: float) -> None:
        self._settling.settle_s = value

    @property
    def hold_deletes_s(self) -> float:
        """Longest time (seconds) a settled deletion waits for new files still settling."""
        return self._settling.hold_deletes_s

    @hold_deletes_s.setter
    def hold_deletes_s(self, value: float) -> None:
        self._settling.hold_deletes_s = value

    def unwatched(self) -> list[str]:
        """Folders inotify cannot watch (past its watch limit): polled instead."""
        return self.coverage.unwatched()

    def idle(self) -> bool:
        """Nothing queued, settling or being applied: the library reflects every event so far."""
        return not self._busy and self.changes.empty() and not self._settling

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the worker thread -------------------------------------------------------------------
    def _run(self, scan_first: bool) -> None:
        try:
            for root in self.roots:  # before the scan: nothing added meanwhile is missed
                self._guarded(lambda root=root: self._follow_links(root))
            if scan_first:
                self._first_scan()
                self._busy = False
            while not self._stop.is_set():
                self._guarded(lambda: self.process_once(timeout=self._poll_s))
        finally:
            if self._dirty:
                self._guarded(self._save)

    def _first_scan(self) -> None:
        """The scan before any event: tried again with back-off until it goes through (or the
        watcher stops), never skipped, whatever stopped it; said once (`Retries`)."""
        while not self._stop.is_set():
            try:
                self._report(self.scanner.scan(self.roots, self._stop))
            except Exception as exc:  # noqa: BLE001 - the watch goes on; the scan is tried again
                self._stop.wait(self.retries.failed(exc))
            else:
                self.retries.succeeded(scanned=True)
                return

    @staticmethod
    def _guarded(step: Callable[[], None]) -> None:
        """Run one step of the worker; an error is logged and the watcher keeps going."""
        try:
            step()
        except Exception:  # noqa: BLE001 - one bad batch must not end the watch
            log.exception("photo watcher: a batch of changes could not be applied")

    def process_once(self, timeout: float = 0.0) -> None:
        """Drain queued changes, then apply whatever has settled (the worker's one step)."""
        try:
            for folder in self.coverage.take_rescans():  # events may have been lost there
                self._busy = True
                self._sync_or_retry([folder])
            for path in self.coverage.poll(self.scanner.path_filter, self.roots, time.monotonic()):
                self._settling.watch(path)
            self._drain(timeout)
            self._busy = self._busy or bool(self._settling)
            self._apply_settled()
        finally:
            self._busy = False

    def _apply_settled(self) -> None:
        ready, deletes = self._settling.settled(time.monotonic())
        for start in range(0, len(ready), self.batch_size):
            if self._stop.is_set():
                return  # what is left is picked up by the next full scan
            self._sync_or_retry(ready[start : start + self.batch_size])
        if deletes:
            self._sync_or_retry(deletes)
        if self._dirty and time.monotonic() - self._last_save >= self.save_interval_s:
            self._last_save = time.monotonic()  # a failed save waits for the next interval too
            self._save()

    def _sync_or_retry(self, paths: list[str]) -> None:
        """Apply settled paths; if that fails as a whole, keep them pending for a retry after
        a pause that grows while the failures go on (`Retries` says the cause once)."""
        try:
            self._sync(paths)
        except Exception as exc:  # noqa: BLE001 - never drop a change: the library would drift
            delay = self.retries.failed(exc, paths)
            for path in paths:
                self._settling.watch(path, delay=delay)
        else:
            self.retries.succeeded(paths)

    def _save(self) -> None:
        """Save the FAISS index; a failure (disk full) is said once while it lasts, not raised:
        the vectors are safe in SQLite and the previous index file is left intact."""
        try:
            self.scanner.lib.save_index()
        except StorageError as exc:
            if str(exc) != self._save_failure:  # said once, not every interval
                log.error("photo watcher: %s", exc)
            self._save_failure = str(exc)
        else:
            self._dirty, self._save_failure = False, None

    def _drain(self, timeout: float) -> None:
        try:
            change = self.changes.get(timeout=timeout) if timeout > 0 else self.changes.get_nowait()
        except queue.Empty:
            return
        self._busy = True
        while True:
            self._take(change)
            try:
                change = self.changes.get_nowait()
            except queue.Empty:
                return

    def _take(self, change: Change) -> None:
        if change.kind == MOVED:
            self._settling.forget(change.path)  # it is not there anymore
            try:
                self._report(self.scanner.move_path(change.path, change.dest))
            except Exception as exc:  # noqa: BLE001 - settle both ends from the disk instead
                self._settling.watch(change.path, delay=self.retries.failed(exc, [change.path]))
            # unknown sources (x.jpg.part) and edits still need a look
            self._settling.watch(change.dest)
            if os.path.isdir(change.dest):  # links inside a renamed folder have new paths
                self._follow_links(change.path)
                self._follow_links(change.dest)
        else:
            if change.kind in (LINK, FOLDER):  # a folder moved in may hold links
                self._follow_links(change.path)
            self._settling.watch(change.path)

    def _follow_links(self, folder: str) -> None:
        """Watch the targets of the symlinked folders at or under `folder` (and no more
        those of links gone from there)."""
        if self._observer is not None:
            self.links.remove_under(self._observer, folder)
            self.links.add_under(self._observer, folder)

    def _photos_in(self, folder: str) -> Iterator[str]:
        """The photos the handler would report inside `folder` (for a settled new folder)."""
        root = next((r for r in self.roots if is_under(folder, r)), None)
        for found in walk_photos(folder, self.scanner.path_filter, _log_walk_error, root):
            if self.handler.wants(found.path, is_directory=False):
                yield found.path

    def _sync(self, paths: list[str]) -> None:
        touched = {r for r in self.roots if any(is_under(p, r) for p in paths)}
        gone_roots = {r for r in touched if not os.path.isdir(r)}
        if gone_roots:  # unplugged, not deleted: let the scanner mark them missing
            self._report(self.scanner.scan(sorted(gone_roots)))
            paths = [p for p in paths if not any(is_under(p, r) for r in gone_roots)]
        if paths:
            self._report(self.scanner.sync_paths(paths))

    def _report(self, report: ScanReport) -> None:
        self._dirty = True
        if self.on_report is not None:
            self.on_report(report)


def _log_walk_error(path: str, reason: str) -> None:
    log.warning("cannot read %s: %s", path, reason)
