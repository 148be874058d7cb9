"""Keeping the library current while folders change: watchdog events, debounced.

Two halves, as in watchdog's debounced example:

- `PhotoEventHandler` runs on watchdog's thread. It only filters (photo extensions,
  hidden and junk folders, exclude globs) and puts `Change`s on a queue; it never touches
  the disk or the library.
- `Watcher`'s worker thread drains the queue into a set of pending paths and applies them
  through the scanner (`Scanner.sync_paths` / `Scanner.move_path`, so the watcher has no
  reconciliation logic of its own) once they have settled: a file is ready when its size
  and mtime have not changed for `settle_s`, so a photo still being copied is never
  embedded half-written. A new folder is expanded into its files, each settled on its own.

Deletions wait until no new file is still settling (at most `hold_deletes_s`), so a photo
moved between two watched roots (seen as delete + create) is recognised as a move by its
fingerprint instead of being removed and re-embedded. A root that disappears (drive
unplugged) goes through `Scanner.scan`, which marks its photos missing instead of removing.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from photosearch.storage import StorageError

from photosearch.indexer.folders import PathFilter, is_under, walk_photos
from photosearch.indexer.scanner import ScanReport, Scanner

log = logging.getLogger(__name__)

CHANGED, FOLDER, DELETED, MOVED = "changed", "folder", "deleted", "moved"
RETRY_S = 5.0  # a batch that could not be applied (disk full, database busy) is retried after this


@dataclass(frozen=True)
class Change:
    """One filtered filesystem event: `kind` is changed/folder/deleted/moved."""

    kind: str
    path: str
    dest: str | None = None  # for moves


class PhotoEventHandler(FileSystemEventHandler):
    """Turns watchdog events about photos into `Change`s on `changes`; nothing else."""

    def __init__(self, changes: queue.Queue, roots: Iterable[str], path_filter: PathFilter):
        super().__init__()
        self.changes = changes
        self.roots = sorted((os.path.abspath(r) for r in roots), key=len, reverse=True)
        self.path_filter = path_filter

    def on_any_event(self, event: FileSystemEvent) -> None:
        path, kind = os.fsdecode(event.src_path), event.event_type
        if kind == "moved":  # only a move between two wanted names is a move for us
            dest = os.fsdecode(event.dest_path)
            src_wanted = self.wants(path, event.is_directory)
            dest_wanted = self.wants(dest, event.is_directory)
            if src_wanted and dest_wanted:
                self.changes.put(Change(MOVED, path, dest))
            elif src_wanted:  # a.jpg -> a.jpg.bak, or renamed to a hidden name
                self.changes.put(Change(DELETED, path))
            elif dest_wanted:  # x.jpg.part -> x.jpg, or moved in from outside the roots
                self.changes.put(Change(FOLDER if event.is_directory else CHANGED, dest))
        elif not self.wants(path, event.is_directory):
            return
        elif kind == "deleted":
            self.changes.put(Change(DELETED, path))
        elif event.is_directory:
            if kind == "created":
                self.changes.put(Change(FOLDER, path))
            # a folder's "modified" only echoes changes to its files, which come on their own
        elif kind in ("created", "modified", "closed", "attrib"):
            # attrib: a touch or a chmod (a file made readable again is worth a retry)
            self.changes.put(Change(CHANGED, path))

    def wants(self, path: str, is_directory: bool) -> bool:
        """Inside a watched root, with no hidden/junk/excluded name; files must be photos."""
        root = next((r for r in self.roots if is_under(path, r)), None)
        if root is None or not self.path_filter.accepts_folder(path, root):
            return False
        return is_directory or self.path_filter.accepts_file(path, root)


@dataclass
class _Pending:
    deadline: float  # monotonic time at which to look again
    snapshot: tuple | None  # (size, mtime_ns), ("folder",) or None when absent
    since: float  # when this path first became pending


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
        on_report: Callable[[ScanReport], None] | None = None,
    ):
        self.scanner = scanner
        self.roots = [os.path.abspath(r) for r in roots]
        self.settle_s = settle_s
        self.hold_deletes_s = hold_deletes_s
        self.batch_size = batch_size
        self.save_interval_s = save_interval_s
        self.on_report = on_report
        self.changes: queue.Queue[Change] = queue.Queue()
        self.handler = PhotoEventHandler(self.changes, self.roots, scanner.path_filter)
        self._pending: dict[str, _Pending] = {}
        self._stop = threading.Event()
        self._observer = None
        self._worker: threading.Thread | None = None
        self._last_save = time.monotonic()
        self._dirty = False
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
        observer = Observer()
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

    def idle(self) -> bool:
        """Nothing queued, settling or being applied: the library reflects every event so far."""
        return not self._busy and self.changes.empty() and not self._pending

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the worker thread -------------------------------------------------------------------
    def _run(self, scan_first: bool) -> None:
        try:
            if scan_first:
                self._guarded(lambda: self._report(self.scanner.scan(self.roots, self._stop)))
                self._busy = False
            while not self._stop.is_set():
                self._guarded(lambda: self.process_once(timeout=self._poll_s))
        finally:
            if self._dirty:
                self._guarded(self._save)

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
            self._drain(timeout)
            self._busy = self._busy or bool(self._pending)
            self._apply_settled()
        finally:
            self._busy = False

    def _apply_settled(self) -> None:
        ready, deletes = self._settled(time.monotonic())
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
        """Apply settled paths; if that fails as a whole, keep them pending for a retry."""
        try:
            self._sync(paths)
        except Exception:  # noqa: BLE001 - never drop a change: the library would drift
            log.exception("photo watcher: %d change(s) could not be applied; retrying in %g s",
                          len(paths), RETRY_S)
            for path in paths:
                self._watch(path, delay=RETRY_S)

    def _save(self) -> None:
        """Save the FAISS index; a failure (disk full) is logged once per try, not raised:
        the vectors are safe in SQLite and the previous index file is left intact."""
        try:
            self.scanner.lib.save_index()
        except StorageError as exc:
            log.error("photo watcher: %s", exc)
        else:
            self._dirty = False

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
            self._pending.pop(change.path, None)  # it is not there anymore
            try:
                self._report(self.scanner.move_path(change.path, change.dest))
            except Exception:  # noqa: BLE001 - settle both ends from the disk instead
                log.exception("photo watcher: could not apply the move of %s", change.path)
                self._watch(change.path)
            self._watch(change.dest)  # unknown sources (x.jpg.part) and edits still need a look
        else:
            self._watch(change.path)

    def _watch(self, path: str, delay: float | None = None) -> None:
        now = time.monotonic()
        since = self._pending[path].since if path in self._pending else now
        wait = self.settle_s if delay is None else delay
        self._pending[path] = _Pending(now + wait, _snapshot(path), since)

    def _settled(self, now: float) -> tuple[list[str], list[str]]:
        """Paths whose state held still for settle_s: (present ones, deleted ones)."""
        ready, deletes, unsettled = [], [], False
        for path, pending in list(self._pending.items()):
            if now < pending.deadline:
                unsettled = unsettled or pending.snapshot is not None
                continue
            snapshot = _snapshot(path)
            if snapshot != pending.snapshot:
                pending.snapshot, pending.deadline = snapshot, now + self.settle_s
                unsettled = unsettled or snapshot is not None
            elif snapshot == ("folder",):
                del self._pending[path]
                root = next((r for r in self.roots if is_under(path, r)), None)
                for found in walk_photos(path, self.scanner.path_filter, _log_walk_error, root):
                    if self.handler.wants(found.path, is_directory=False):
                        self._watch(found.path)
                unsettled = True
            elif snapshot is None:
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


def _snapshot(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if os.path.isdir(path):
        return ("folder",)
    return (st.st_size, st.st_mtime_ns)


def _log_walk_error(path: str, reason: str) -> None:
    log.warning("cannot read %s: %s", path, reason)
