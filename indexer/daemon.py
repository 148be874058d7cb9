"""The daemon behind `photosearch watch`: lock, scan, watch, serve.

1. Take the library's writer lock (a second daemon refuses, naming the first one's pid).
2. Load the model once, open the library, remember the given folders as its roots.
3. Serve query/similar/status on `daemon.sock` (indexer.ipc) from the start, so the
   library can be searched while it is being scanned.
4. Scan the roots (indexer.scanner), then keep them current with indexer.watcher, whose
   worker starts with one more (cheap, stat-only) scan to catch what changed meanwhile.
5. Every `poll_s` seconds look at each root: one that disappears (an unplugged drive) or
   changes device (a drive mounted on an empty mount point) is rescanned, so its photos
   are marked missing, and reconciled when it comes back; the watcher is restarted.
6. Folders the watcher cannot watch (past the inotify watch limit) are polled every
   `poll_unwatched_s` seconds instead; `status` lists them under `daemon.unwatched`.

SIGINT and SIGTERM end it cleanly: the batch in hand is finished and committed, the FAISS
index saved, the socket removed, exit 0. After a SIGKILL nothing is lost but the batch in
hand: each batch is committed whole, the index file is rebuilt from SQLite when it is stale,
and the next scan carries on where this one stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from photosearch.indexer import service
from photosearch.indexer.coverage import POLL_UNWATCHED_S
from photosearch.indexer.ipc import SocketServer
from photosearch.indexer.lock import LibraryLock
from photosearch.indexer.service import Log, ServiceError
from photosearch.indexer.write_faults import named_faults, until_written

PROGRESS_EVERY_S = 0.5  # seconds between two progress lines on stderr


def watch(paths: list[str], library_dir: str | None = None, checkpoint: str | None = None,
          log: Log = service.quiet, settle_s: float = 1.0, poll_s: float = 3.0,
          stop: threading.Event | None = None, poll_unwatched_s: float = POLL_UNWATCHED_S) -> dict:
    """Run the daemon until SIGINT/SIGTERM (or `stop` is set); return the last scan's report.

    `paths` are added to the library's roots; with none, the remembered roots are watched.
    """
    roots = [os.path.abspath(os.path.expanduser(p)) for p in paths]
    for root in roots:
        if not os.path.isdir(root):
            raise ServiceError(f"folder not found: {root}")
    folder = service.library_folder(library_dir)
    service.secure_library(folder, log, create=True)
    stop = stop or threading.Event()
    with ExitStack() as stack:
        stack.enter_context(LibraryLock(folder, "watch"))
        stack.enter_context(_stop_on_signals(stop))
        model = service.load_model(checkpoint)

        opened = []

        def open_library():
            from photosearch.storage import Library

            with named_faults(folder):
                if not opened:
                    opened.append(stack.enter_context(_closed_on_exit(Library.open(folder))))
                lib = opened[0]
                service.ensure_same_model(lib, model.fingerprint)
                for root in roots:
                    lib.add_root(root)
            return lib

        # A full disk or another program's lock is waited out here too, said once: never the end.
        lib = until_written(open_library, log, lambda fault: True, stop.wait)
        if lib is None:
            return {}  # stopped while waiting
        daemon = Daemon(lib, model, folder, log, stop, settle_s, poll_s, poll_unwatched_s)
        return daemon.run()


class Daemon:
    """One running daemon over an open library and a loaded model; see the module doc."""

    def __init__(self, lib, model, folder: Path, log: Log, stop: threading.Event,
                 settle_s: float, poll_s: float, poll_unwatched_s: float = POLL_UNWATCHED_S):
        self.lib, self.model, self.folder, self.log, self.stop = lib, model, folder, log, stop
        self.settle_s, self.poll_s, self.poll_unwatched_s = settle_s, poll_s, poll_unwatched_s
        self._unwatched_told = threading.Event()  # the watch limit is said once per daemon
        self._watcher = None
        self._last_progress = 0.0
        self._report: dict = {}
        self._scanning: dict | None = None  # {"done", "total"} of the scan under way
        self._waiting: dict | None = None  # {"photos", "cause"}: the scan waits for a writable library

    def run(self) -> dict:
        from photosearch.indexer.embedder import Embedder
        from photosearch.indexer.scanner import Scanner

        roots = [root.path for root in self.lib.roots()]
        if not roots:
            raise ServiceError("no folders to watch: name one, e.g. `photosearch watch ~/Pictures`")
        searcher = service.Searcher(self.lib, self.folder, model=self.model,
                                    daemon_pid=os.getpid(), scanning=lambda: self._scanning)
        self._thread = threading.get_ident()
        watcher = None
        with Embedder(self.model) as embedder, SocketServer(self.folder, self._answerer(searcher), self.log), \
                _forwarded_logging(self.log):
            self.scanner = Scanner(self.lib, embedder, on_progress=self._progress)
            self.log(f"photosearch daemon (pid {os.getpid()}) watching {len(roots)} folder(s), "
                     f"answering on {self.folder / 'daemon.sock'}")
            try:
                self._scan(roots)
                roots = [root.path for root in self.lib.roots()]  # as the scan merged them (aliases gone)
                seen = {root: _identity(root) for root in roots}
                while not self.stop.is_set():
                    watcher = self._start_watcher(roots)
                    changed, seen = self._wait_for_root_change(seen)
                    watcher = self._stop_watcher(watcher)
                    if changed:
                        self._scan(sorted(changed))
            finally:
                self._stop_watcher(watcher)
                saved = self._save_on_exit()
        self.log("photosearch daemon stopped" + ("; index saved" if saved else ""))
        return self._report

    def _save_on_exit(self) -> bool:
        """Save the FAISS index; on a full disk say why it could not be (the vectors are safe
        in SQLite and the next start rebuilds the file) instead of ending in an error."""
        from photosearch.storage import StorageError

        try:
            self.lib.save_index()
        except StorageError as exc:
            self.log(f"warning: {exc}")
            return False
        return True

    # -- scanning ----------------------------------------------------------------------------
    def _scan(self, roots: list[str]) -> None:
        """Reconcile `roots` in the daemon's own thread; a stop request ends it between batches."""
        from photosearch.indexer.scan_outcomes import ScanReport
        from photosearch.storage import IndexSaveError

        started = time.monotonic()

        def scan_once():
            with named_faults(self.folder):
                return self.scanner.scan(roots, stop=self.stop)

        try:  # a fault of the library (disk full, locked...) is waited out, said once: never the end
            report = until_written(scan_once, self.log, lambda fault: True, self.stop.wait, self._wait_for)
            report = report or ScanReport(interrupted=True)  # stopped while waiting
        except IndexSaveError as exc:  # disk full: keep going, the watcher saves again later
            self.log(f"warning: {exc}")
            return
        finally:
            self._scanning = None
        self._report = service.report_dict(report, roots, time.monotonic() - started)
        self.log(_summary(report, time.monotonic() - started))

    def _wait_for(self, fault) -> None:
        self._waiting = None if fault is None else {"photos": fault.not_stored or 0, "cause": fault.fault}

    def _progress(self, done: int, total: int) -> None:
        if threading.get_ident() != self._thread:
            return  # the watcher's small syncs: their outcome is logged by `_changes`
        self._scanning = {"done": done, "total": total}
        now = time.monotonic()
        if total and (done == total or now - self._last_progress >= PROGRESS_EVERY_S):
            self._last_progress = now
            self.log(f"scanning: {done}/{total} photos")

    def _answerer(self, searcher):
        """`searcher.answer`, with the folders inotify cannot watch added to `status`."""
        def answer(request: dict) -> dict:
            reply = searcher.answer(request)
            if request.get("op") == "status":
                watcher = self._watcher
                unwatched = watcher.unwatched() if watcher is not None else []
                waiting = self._waiting or (watcher.retries.waiting() if watcher is not None else None)
                reply["daemon"].update(unwatched=unwatched, unwatched_count=len(unwatched),
                                       unwatched_poll_s=self.poll_unwatched_s, waiting=waiting)
            return reply
        return answer

    # -- watching ----------------------------------------------------------------------------
    def _start_watcher(self, roots: list[str]):
        from photosearch.indexer.watcher import Watcher

        watcher = Watcher(self.scanner, roots, settle_s=self.settle_s, hold_deletes_s=10.0,
                          save_interval_s=30.0, poll_unwatched_s=self.poll_unwatched_s,
                          on_report=self._changes, unwatched_told=self._unwatched_told)
        watcher.start(scan_first=True)
        self._watcher = watcher
        return watcher

    def _stop_watcher(self, watcher) -> None:
        if watcher is not None:
            watcher.stop()
        self._watcher = None
        return None

    def _changes(self, report) -> None:
        parts = [f"{getattr(report, name)} {name}" for name in
                 ("added", "updated", "moved", "removed", "failed", "missing") if getattr(report, name)]
        if parts:
            self.log("changes: " + ", ".join(parts))

    def _wait_for_root_change(self, seen: dict) -> tuple[set[str], dict]:
        """Poll the roots until one appears, disappears or changes device, or until stopped."""
        while not self.stop.wait(self.poll_s):
            now = {root: _identity(root) for root in seen}
            changed = {root for root in seen if now[root] != seen[root]}
            for root in sorted(changed):
                self.log(f"folder {root} {'is back' if now[root] else 'is gone (its photos are kept as missing)'}")
            if changed:
                return changed, now
        return set(), seen


def _identity(root: str) -> tuple[int, int] | None:
    """(device, inode) of a root folder, None when it is not there: a mount changes it."""
    try:
        st = os.stat(root)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if os.path.isdir(root) else None


def _summary(report, seconds: float) -> str:
    if report.interrupted:
        return f"scan stopped after {seconds:.1f} s: the rest is left for the next run"
    return (f"scan done in {seconds:.1f} s: {report.added} added, {report.updated} updated, "
            f"{report.moved} moved, {report.removed} removed, {report.unchanged} unchanged, "
            f"{report.failed} failed, {report.missing} missing")


class _LogForwarder(logging.Handler):
    def __init__(self, log: Log):
        super().__init__(logging.INFO)
        self.forward = log

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.forward(record.getMessage() + (f": {type(error).__name__}: {error}" if error else ""))


@contextmanager
def _forwarded_logging(log: Log):
    """The watcher and scanner log through `logging`; their lines go where ours go."""
    logger = logging.getLogger("photosearch.indexer")
    handler = _LogForwarder(log)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@contextmanager
def _closed_on_exit(lib):
    """Close `lib` at the end. Its last save may fail (a full disk): the daemon has said so
    already (`Daemon._save_on_exit`), the vectors are safe in SQLite, and an error in hand
    must not be hidden by it."""
    from photosearch.storage import StorageError

    try:
        yield lib
    finally:
        with suppress(StorageError):
            lib.close()


@contextmanager
def _stop_on_signals(stop: threading.Event):
    """SIGINT/SIGTERM set `stop` instead of raising (main thread only; else left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
