"""A library that cannot be written just now: what is said, and how long to wait.

The storage layer names the passing faults of the machine (`storage.storage_fault`: disk
full, database locked by another program, disk I/O error, read-only file system). When a
scan's write fails with one of them the scanner stops and raises `WriteFault`, which counts
the photos it did not store; everything committed before stays, and a rerun simply carries
on. `index` waits and retries (with `Backoff`) while the fault may pass by itself (another
program's lock, an I/O hiccup) and reports the rest in one line; the daemon waits out every
fault, however long, and never ends for one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

from photosearch.indexer.resources import Log, ServiceError
from photosearch.storage.faults import DISK_FULL, IO_ERROR, LOCKED, READ_ONLY

PASSING = {LOCKED, IO_ERROR}  # faults that usually pass without the user: `index` waits them out
WHAT_TO_DO = {
    DISK_FULL: "free some space on the disk that holds {folder}",
    LOCKED: "another program holds the library database's write lock; let it finish",
    IO_ERROR: "the disk that holds {folder} reported an error; check it (e.g. `dmesg`)",
    READ_ONLY: "the file system that holds {folder} is read-only; remount it read-write",
}


class WriteFault(ServiceError):
    """The library could not be written (`fault`, one of the names above); `not_stored`
    photos seen by the scan were not stored, `report` says what the scan did until then.
    Nothing half-written is left behind."""

    def __init__(self, fault: str, not_stored: int | None, folder=None, report=None):
        self.fault, self.not_stored, self.folder, self.report = fault, not_stored, folder, report
        super().__init__(self.describe() + ": " + self.what_to_do() + ", then run it again to finish")

    def describe(self) -> str:
        """E.g. "disk full: 168 photo(s) not stored" (the photos stored before are kept)."""
        if self.not_stored is None:  # before the scan began
            return f"{self.fault}: nothing new was stored"
        if not self.not_stored:
            return f"{self.fault}: the scan could not finish (every photo it saw is stored)"
        return f"{self.fault}: {self.not_stored} photo(s) not stored"

    def what_to_do(self) -> str:
        return WHAT_TO_DO.get(self.fault, "{folder} cannot be written").format(folder=self.folder or "the library")


@contextmanager
def named_faults(folder) -> Iterator[None]:
    """Outside a scan (opening the library, adding a root): a StorageError caused by a passing
    fault becomes a WriteFault (nothing stored yet); anything else passes unchanged."""
    from photosearch.storage import IndexSaveError, StorageError, storage_fault

    try:
        yield
    except IndexSaveError:
        raise
    except StorageError as exc:
        fault = storage_fault(exc, folder)
        if fault is None:
            raise
        raise WriteFault(fault, None, folder) from exc


class Backoff:
    """Delays between tries: `first` seconds, doubling after each failed try, never above
    `cap`; `reset` after a success."""

    def __init__(self, first: float = 1.0, cap: float = 60.0):
        self.first, self.cap, self.tries = first, cap, 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * 2 ** min(self.tries, 30))
        self.tries += 1
        return delay

    def reset(self) -> None:
        self.tries = 0


def carry_over(earlier, final):
    """`final` (the ScanReport of the scan that went through) with what the `earlier`,
    stopped scans of the same roots stored: those photos are "unchanged" to the later scan,
    and are counted as what they were (added, updated, moved) instead."""
    for partial in earlier:
        for name in ("added", "updated", "moved"):
            setattr(final, name, getattr(final, name) + getattr(partial, name))
        final.unchanged = max(0, final.unchanged - partial.added - partial.updated - partial.moved)
    return final


def until_written(step: Callable[[], object], log: Log, keep_trying: Callable[[WriteFault], bool],
                  sleep: Callable[[float], bool], waiting: Callable[[WriteFault | None], None] = lambda _: None):
    """`step()`'s value, calling it again after each WriteFault while `keep_trying(fault)`.

    Between tries it waits with back-off; `sleep(seconds)` returns True when the wait was cut
    short by a stop request, and this then returns None. The fault is said once in one line
    (again only if its kind changes), and so is the recovery; `waiting` is told the fault in
    hand (None once written). A step that is a scan returns its ScanReport, which then also
    counts what the stopped tries stored (`carry_over`). Raises the last WriteFault when
    `keep_trying` says no.
    """
    backoff, earlier, said = Backoff(), [], None
    while True:
        try:
            value = step()
        except WriteFault as fault:
            if fault.report is not None:
                earlier.append(fault.report)
            if not keep_trying(fault):
                raise
            delay = backoff.next_delay()
            if said != fault.fault:
                said = fault.fault
                log(f"cannot write the library ({fault.describe()}); trying again in {delay:g} s, then "
                    f"with longer pauses up to {backoff.cap:g} s: {fault.what_to_do()}")
            waiting(fault)
            if sleep(delay):
                waiting(None)
                return None
            continue
        waiting(None)
        if said:
            log("the library can be written again: carried on")
        return carry_over(earlier, value) if earlier else value


class Retries:
    """The watcher's changes that could not be written, waiting for another try.

    `failed` is told each failure with the paths it held back and returns how long to wait
    before the next try (`Backoff`). The cause is said once, in one line (a storage fault by
    its name; anything else, a bug, with its traceback the first time only), and again only
    when it changes; `succeeded` takes paths off the list and says when the library can be
    written again. `waiting()` is what `status` shows: how many photos wait, and why.
    """

    def __init__(self, log, first: float = 1.0, cap: float = 60.0, folder=None):
        self.log = log  # a logging.Logger
        self.folder = folder  # the library's, to tell a full disk from an I/O error
        self.backoff = Backoff(first, cap)
        self.paths: set[str] = set()
        self.unscanned = 0  # photos a failed scan did not store (WriteFault.not_stored)
        self.cause: str | None = None

    def failed(self, exc: Exception, paths=(), what: str = "change(s)") -> float:
        from photosearch.storage import storage_fault

        fault = storage_fault(exc, self.folder)
        cause = fault or f"{type(exc).__name__}: {exc}"
        self.paths.update(paths)
        if isinstance(exc, WriteFault):
            self.unscanned, what = exc.not_stored or 0, "photo(s) of the scan"
        delay = self.backoff.next_delay()
        if cause != self.cause:
            self.cause = cause
            line = (f"photo watcher: cannot write the library ({cause}): {self.count()} {what} wait; "
                    f"trying again in {delay:g} s, then with longer pauses up to {self.backoff.cap:g} s")
            if fault is not None:
                self.log.warning("%s", line)
            else:  # not a fault of the machine: show where it came from, once
                self.log.error("%s", line, exc_info=exc)
        return delay

    def succeeded(self, paths=(), scanned: bool = False) -> None:
        """`paths` were written (`scanned`: a whole scan went through)."""
        self.paths.difference_update(paths)
        if scanned:
            self.unscanned = 0
        if self.cause is not None and not self.paths and not self.unscanned:
            self.log.warning("photo watcher: the library can be written again: carried on")
            self.cause = None
            self.backoff.reset()

    def waiting(self) -> dict | None:
        """{"photos": how many wait, "cause": why} while some do, else None."""
        return {"photos": self.count(), "cause": self.cause} if self.cause is not None else None

    def count(self) -> int:
        return len(self.paths) + self.unscanned
