"""Storage faults that pass: another process holding SQLite's write lock past the busy timeout,
and a real file system that fills up. `index` and the daemon wait them out with back-off, say
so once in one line, count the photos that wait, never mark a photo failed for them, and
lose or double nothing; a full disk is reported as a full disk with the photos not stored."""

from __future__ import annotations

import logging
import re
import signal
import threading
import time

import pytest
from watchdog.events import FileCreatedEvent

from photosearch.indexer import daemon, ipc, service
from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.indexer.watcher import Watcher
from photosearch.storage import Library
from tests.daemon.conftest import daemon_factory, draw_noise, eventually, run_cli  # noqa: F401 - fixture
from tests.indexer.stand_ins import ColourModel, make_photo
from tests.reliability.storage_faults import lock_holders, short_busy_timeout, small_disk  # noqa: F401

DB = "library.sqlite"


def noise_photos(folder, count: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        draw_noise(folder / f"{i:03d}.png", seed=i)


def counts(library) -> dict:
    with Library.open(library, read_only=True) as lib:
        return lib.stats()["by_status"]


def test_index_waits_out_another_process_holding_the_write_lock(tmp_path, tiny_checkpoint, short_busy_timeout,
                                                                ledger):
    root, library = tmp_path / "photos", tmp_path / "lib"
    noise_photos(root, 120)
    lines, holders = [], []
    with lock_holders() as hold:
        def progress(done: int, total: int) -> None:
            if done and not holders:  # the first batch is in: now another program takes the lock
                holders.append(hold(library / DB, 3.0))

        report = service.index([str(root)], str(library), str(tiny_checkpoint), progress, lines.append)
        held = holders[0].wait()
    said = [line for line in lines if "database is locked" in line]
    assert len(said) == 1 and "\n" not in said[0] and "photo(s) not stored" in said[0], lines
    assert lines[-1] == "the library can be written again: carried on"
    assert (report["added"], report["unchanged"], report["failed"]) == (120, 0, 0)  # the tries add up
    assert held >= 3.0
    with Library.open(library) as lib:
        ledger.assert_consistent(lib, expect=120)
    ledger.note("another process holds the SQLite write lock past the busy timeout", f"index waited out a {held:.1f} s lock")


def test_the_daemon_waits_out_a_write_lock_held_during_its_scan(tmp_path, tiny_checkpoint, short_busy_timeout,
                                                                ledger):
    root, library = tmp_path / "photos", tmp_path / "lib"
    noise_photos(root, 80)
    logs, stop, errors, holders = [], threading.Event(), [], []
    with lock_holders() as hold:
        def log(line: str) -> None:
            logs.append(line)
            if line.startswith("scanning: 0/") and not holders:  # the scan is under way
                holders.append(hold(library / DB, 4.0))

        def run():
            try:
                daemon.watch([str(root)], str(library), str(tiny_checkpoint), log=log, settle_s=0.2,
                             poll_s=0.5, stop=stop)
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        thread = threading.Thread(target=run, name="test-daemon")
        thread.start()
        try:
            status = eventually(lambda: errors or _waiting(library), 60, "status to show photos waiting")
            assert not errors, errors
            assert status == {"photos": 80, "cause": "database is locked"}
            assert "waiting to retry: 80 photos (database is locked)" in run_cli(
                "--library", library, "status").output
            eventually(lambda: errors or any("scan done" in line for line in logs), 60, "the scan to go through")
            assert not errors and thread.is_alive(), errors
            assert _waiting(library) is None
            held = holders[0].wait()
        finally:
            stop.set()
            thread.join(60)
    assert not errors, errors
    said = [line for line in logs if "database is locked" in line]
    assert len(said) == 1 and "Traceback" not in "\n".join(logs), logs
    with Library.open(library) as lib:
        ledger.assert_consistent(lib, expect=80)
    assert counts(library)["failed"] == 0
    ledger.note("another process holds the SQLite write lock past the busy timeout", f"the daemon waited out a {held:.1f} s lock")


def _waiting(library):
    try:
        reply = ipc.request(library, {"op": "status"}, timeout=5)
    except ipc.DaemonUnavailable:
        return None
    return reply["daemon"].get("waiting")


@pytest.mark.parametrize("when", ["already full", "fills up during the scan"])
def test_index_on_a_full_disk_says_disk_full_and_counts_the_photos_not_stored(tmp_path, tiny_checkpoint, small_disk,
                                                                              ledger, when):
    root, library = tmp_path / "photos", small_disk.path / "lib"
    if when == "already full":
        noise_photos(root, 200)
        small_disk.fill(leave_kb=0)
    else:
        noise_photos(root, 50)
        assert run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint).exit_code == 0
        noise_photos(root, 150, start=50)
        small_disk.fill(leave_kb=160)
    result = run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "could not save the vector index" not in result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and error[0].startswith("Error: disk full: "), result.output
    assert "free some space on the disk that holds" in error[0]
    small_disk.make_room()
    with Library.open(library) as lib:  # room again: opening may finish creating the library
        by_status = lib.stats()["by_status"]
    if when == "already full":
        assert "nothing new was stored" in error[0] and by_status["indexed"] == 0
    else:
        not_stored = int(re.search(r"disk full: (\d+) photo\(s\) not stored", error[0]).group(1))
        assert not_stored > 0 and by_status["indexed"] + not_stored == 200, (error[0], by_status)
        ledger.note("disk full while writing photos", f"{not_stored} of 200 not stored, said so")
    assert by_status["failed"] == 0  # a full disk is never the photos' fault
    rerun = run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint)  # room again
    assert rerun.exit_code == 0, rerun.output
    with Library.open(library) as lib:
        ledger.assert_consistent(lib, expect=200)


def test_the_daemon_on_a_full_disk_stays_up_and_resumes_when_space_returns(tmp_path, small_disk, daemon_factory,
                                                                           tiny_checkpoint, ledger):
    root, library = tmp_path / "photos", small_disk.path / "lib"
    noise_photos(root, 20)
    assert run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint).exit_code == 0
    noise_photos(root, 100, start=20)
    small_disk.fill(leave_kb=0)
    watch = daemon_factory([root], library=library).start()
    eventually(lambda: watch.check_alive() or "cannot write the library (disk full" in watch.log(), 60,
               "the daemon to say the disk is full")
    time.sleep(3)  # it waits, it does not end
    watch.check_alive()
    small_disk.make_room()
    watch.wait_scanned(timeout=60)
    log = watch.log()
    assert log.count("cannot write the library (disk full") == 1 and "Traceback" not in log, log
    assert "the library can be written again: carried on" in log
    assert watch.signal(signal.SIGTERM) == 0
    assert counts(library)["failed"] == 0
    with Library.open(library) as lib:
        ledger.assert_consistent(lib, expect=120)


def test_the_watchers_first_scan_is_retried_not_swallowed(tmp_path, short_busy_timeout, caplog, ledger):
    root, library = tmp_path / "photos", tmp_path / "lib"
    root.mkdir()
    with Library.open(library) as lib, Embedder(ColourModel(), workers=1) as embedder, lock_holders() as hold:
        lib.add_root(root)
        scanner = Scanner(lib, embedder)
        scanner.scan()  # as the daemon does before it starts its watcher
        for i in range(6):  # ... and what changed meanwhile is the watcher's first scan's to find
            make_photo(root / f"{i}.jpg", (40 * i, 9, 9))
        watcher = Watcher(scanner, [root], settle_s=0.0)
        holder = hold(library / DB, 2.0)
        with caplog.at_level(logging.INFO, logger="photosearch.indexer"):
            watcher.start(scan_first=True)
            try:
                eventually(lambda: watcher.retries.waiting(), 20, "the first scan to wait")
                assert watcher.retries.waiting() == {"photos": 6, "cause": "database is locked"}
                holder.wait()
                eventually(lambda: watcher.idle() and len(lib.photos_by_status("indexed")) == 6, 30,
                           "the first scan to go through")
            finally:
                watcher.stop()
        said = [r for r in caplog.records if "cannot write the library" in r.getMessage()]
        assert len(said) == 1 and said[0].exc_info is None  # one line, no traceback
        assert watcher.retries.waiting() is None
        ledger.assert_consistent(lib, expect=6)


def test_a_photo_is_failed_only_for_its_own_fault(tmp_path, short_busy_timeout, ledger):
    """While the library cannot be written, a bad photo and good ones all wait; once it can,
    the bad one is failed with its reason and the good ones are indexed."""
    root, library = tmp_path / "photos", tmp_path / "lib"
    for i in range(4):
        make_photo(root / f"{i}.jpg", (60 * i, 9, 9))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    with Library.open(library) as lib, Embedder(ColourModel(), workers=1) as embedder, lock_holders() as hold:
        lib.add_root(root)
        watcher = Watcher(Scanner(lib, embedder), [root], settle_s=0.0)
        holder = hold(library / DB, 60.0)
        for path in sorted(root.iterdir()):
            watcher.handler.dispatch(FileCreatedEvent(str(path)))
        watcher.process_once()
        assert lib.stats()["photos"] == 0 and watcher.retries.waiting() == {"photos": 5, "cause": "database is locked"}
        holder.kill()
        eventually(lambda: watcher.process_once() or watcher.idle(), 30, "the retry")
        failed = lib.photos_by_status("failed")
        assert [r.path for r in failed] == [str(root / "broken.jpg")] and failed[0].error
        ledger.assert_consistent(lib, expect=5)
