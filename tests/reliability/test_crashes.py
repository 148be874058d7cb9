"""Faults from the machine: SIGKILL in the middle of a FAISS save, index files damaged in
every way, a full disk, and a root that disappears in the middle of a scan."""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from watchdog.events import FileCreatedEvent

import photosearch.indexer.watcher as watcher_module
from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.indexer.watcher import Watcher
from photosearch.indexer.write_faults import WriteFault
from photosearch.storage import IndexSaveError, Library, database
from photosearch.storage.index_file import INDEX_NAME, SIDECAR_NAME, file_facts
from tests.indexer.stand_ins import ColourModel, make_photo
from tests.reliability.storage_faults import lock_holders
from tests.storage.conftest import fill, unit_vectors

REPO = Path(__file__).resolve().parents[2]
DIM = 64
REAL_WRITE_INDEX = faiss.write_index

SAVER = """
import sys
import numpy as np
from photosearch.storage import Library

lib = Library.open(sys.argv[1])
rng = np.random.default_rng(int(sys.argv[2]))
ids, vectors = lib.ids_and_vectors()
print("ready", flush=True)
while True:  # replace one vector, save the whole index, again and again, until killed
    vector = rng.standard_normal(vectors.shape[1]).astype(np.float32)
    lib.set_vectors({int(rng.choice(ids)): vector / np.linalg.norm(vector)})
    lib.save_index()
"""


def assert_index_mirrors_sqlite(lib: Library, count: int, ledger) -> None:
    ids, _ = lib.ids_and_vectors()
    mismatch = lib.check_index()
    ledger.count_audit(count, lost=max(0, count - ids.size), duplicated=max(0, ids.size - count),
                       index_mismatch=mismatch)
    assert mismatch is None and ids.size == count
    stats = lib.stats()
    assert stats["index_entries"] == stats["vectors"] == count


def test_sigkill_during_faiss_saves_never_loses_or_doubles_a_vector(tmp_path, ledger):
    folder, count, kills = tmp_path / "lib", 20_000, 6
    with Library.open(folder) as lib:
        fill(lib, [f"/p/{i:05d}.jpg" for i in range(count)], unit_vectors(count, DIM))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    rng, mid_save, repairs = random.Random(1), 0, []
    for kill in range(kills):
        tmp = folder / (INDEX_NAME + ".tmp")
        tmp.unlink(missing_ok=True)  # a leftover of the last kill would fool the watch below
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(folder), str(kill)], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            deadline = time.monotonic() + (10 if kill % 2 == 0 else rng.uniform(0.05, 0.6))
            while time.monotonic() < deadline and not (kill % 2 == 0 and tmp.exists()):
                pass  # even kills: the moment a save starts writing; odd ones: at random
            child.send_signal(signal.SIGKILL)
            mid_save += tmp.exists()
        finally:
            child.kill()
            child.wait(10)
            child.stdout.close()
            child.stderr.close()
        with Library.open(folder) as lib:  # loads the index, or rebuilds it from SQLite
            repairs.append(lib.stats()["index_repair"])
            assert_index_mirrors_sqlite(lib, count, ledger)
    assert mid_save >= kills // 2, "the kills should land inside saves"
    ledger.note("SIGKILL during a FAISS save",
                f"{kills} kills, {mid_save} inside a save, {sum(r is not None for r in repairs)} rebuilds")


def vouch_for_index(folder: Path) -> None:
    """Make the sidecar describe the index file as it is now, so the loader parses it."""
    sidecar = json.loads((folder / SIDECAR_NAME).read_text())
    sidecar.update(file_facts(folder / INDEX_NAME))
    (folder / SIDECAR_NAME).write_text(json.dumps(sidecar))


def bit_rot(folder: Path, seed: int) -> None:
    """A few bytes of the index change on disk; its size and mtime stay as they were."""
    path = folder / INDEX_NAME
    stat = path.stat()
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    positions = rng.integers(0, min(len(data), 200), 3) if seed % 2 else rng.integers(0, len(data), 3)
    for position in positions:  # half in the header, where sizes and types are
        data[position] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


DAMAGE = {
    "index deleted": lambda f: (f / INDEX_NAME).unlink(),
    "sidecar deleted": lambda f: (f / SIDECAR_NAME).unlink(),
    "index emptied": lambda f: ((f / INDEX_NAME).write_bytes(b""), vouch_for_index(f)),
    "sidecar not JSON": lambda f: (f / SIDECAR_NAME).write_text("{oops"),
    "sidecar wrong shape": lambda f: (f / SIDECAR_NAME).write_text('[1, 2, 3]'),
    "sidecar wrong types": lambda f: (f / SIDECAR_NAME).write_text(
        json.dumps({"generation": "x", "kind": 5, "tombstones": 7, "count": None})),
    "index replaced by another FAISS index": lambda f: (
        faiss.write_index(faiss.IndexFlatL2(DIM), str(f / INDEX_NAME)), vouch_for_index(f)),
    **{f"bit rot (seed {seed})": (lambda s: lambda f: bit_rot(f, s))(seed) for seed in range(6)},
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_faiss_file_is_rebuilt(tmp_path, ledger, damage):
    folder, count = tmp_path / "lib", 300
    vectors = unit_vectors(count, DIM)
    with Library.open(folder) as lib:
        ids = fill(lib, [f"/p/{i}.jpg" for i in range(count)], vectors)
    DAMAGE[damage](folder)
    with Library.open(folder) as lib:
        assert_index_mirrors_sqlite(lib, count, ledger)
        assert [h.photo.id for h in lib.search(vectors[7], 1)] == [ids[7]]
    with Library.open(folder) as lib:  # the rebuilt index was saved and now loads as is
        assert lib.stats()["index_repair"] is None


def disk_full(index, path):
    with open(path, "wb") as fh:
        fh.write(b"half an index")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def test_disk_full_while_the_watcher_saves(tmp_path, monkeypatch, caplog, ledger):
    root = tmp_path / "photos"
    make_photo(root / "first.jpg", (9, 9, 200))
    with Library.open(tmp_path / "lib") as lib, Embedder(ColourModel(), workers=1) as embedder:
        lib.add_root(root)
        scanner = Scanner(lib, embedder)
        scanner.scan()
        before = (tmp_path / "lib" / INDEX_NAME).read_bytes()
        watcher = Watcher(scanner, [root], settle_s=0.0, save_interval_s=0.0)
        monkeypatch.setattr(faiss, "write_index", disk_full)
        with caplog.at_level(logging.INFO, logger="photosearch.indexer"):
            for i in range(3):  # the disk stays full: every change is still applied
                photo = make_photo(root / f"new{i}.jpg", (60 * i, 200, 9))
                watcher.handler.dispatch(FileCreatedEvent(str(photo)))
                watcher.process_once()
                assert lib.get_by_path(str(photo)).status == "indexed"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        # said once while the disk stays full, not at every save interval
        assert len(errors) == 1 and all("No space left on device" in r.getMessage() for r in errors)
        assert all(r.exc_info is None for r in errors)  # one line each, no traceback
        assert (tmp_path / "lib" / INDEX_NAME).read_bytes() == before  # the old index is intact
        assert not list((tmp_path / "lib").glob("*.tmp"))
        monkeypatch.setattr(faiss, "write_index", REAL_WRITE_INDEX)
        watcher.process_once()  # space again: the next save goes through
        ledger.assert_consistent(lib, expect=4)
    with Library.open(tmp_path / "lib") as lib:
        assert lib.stats()["index_repair"] is None
        ledger.assert_consistent(lib, expect=4)


def test_disk_full_during_a_scan_keeps_the_scan_and_reports_the_save(tmp_path, monkeypatch, ledger):
    root = tmp_path / "photos"
    for i in range(12):
        make_photo(root / f"{i:02d}.jpg", (20 * i, 9, 9))
    with Library.open(tmp_path / "lib") as lib, Embedder(ColourModel(), batch_size=2, workers=1) as embedder:
        lib.add_root(root)
        monkeypatch.setattr(faiss, "write_index", disk_full)
        with pytest.raises(IndexSaveError, match="No space left on device"):
            Scanner(lib, embedder, batch_size=2, save_every=1).scan()  # periodic saves fail too
        assert lib.stats()["by_status"]["indexed"] == 12  # every batch was committed anyway
        monkeypatch.setattr(faiss, "write_index", REAL_WRITE_INDEX)
        ledger.assert_consistent(lib, expect=12)


def test_a_full_disk_when_the_index_file_must_be_rebuilt_does_not_stop_the_open(tmp_path, monkeypatch, ledger):
    folder, count = tmp_path / "lib", 50
    vectors = unit_vectors(count, DIM)
    with Library.open(folder) as lib:
        ids = fill(lib, [f"/p/{i}.jpg" for i in range(count)], vectors)
    (folder / INDEX_NAME).unlink()
    monkeypatch.setattr(faiss, "write_index", disk_full)
    lib = Library.open(folder)  # rebuilt in memory; the save waits for room
    assert lib.stats()["index_repair"] == "missing"
    assert [h.photo.id for h in lib.search(vectors[5], 1)] == [ids[5]]
    monkeypatch.setattr(faiss, "write_index", REAL_WRITE_INDEX)
    lib.close()  # room again: saved on closing
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"] is None
        assert_index_mirrors_sqlite(lib, count, ledger)


def test_a_root_that_vanishes_during_a_scan_is_kept_as_missing(tmp_path, ledger):
    root, away = tmp_path / "drive", tmp_path / "unplugged"
    for i in range(12):
        make_photo(root / f"{i:02d}.jpg", (20 * i, 50, 50))
    with Library.open(tmp_path / "lib") as lib:
        lib.add_root(root)
        with Embedder(ColourModel(), batch_size=2, workers=1) as embedder:
            Scanner(lib, embedder, batch_size=2).scan()
        for i in range(12):  # every photo changes, so the next scan reads them all again
            make_photo(root / f"{i:02d}.jpg", (20 * i, 90, 90), size=(20, 20))

        class Unplugging(ColourModel):
            def encode_search_images(self, images):
                if self.images_encoded >= 4 and root.exists():
                    root.rename(away)  # the drive goes away in the middle of the scan
                return super().encode_search_images(images)

        with Embedder(Unplugging(), batch_size=2, workers=1) as embedder:
            report = Scanner(lib, embedder, batch_size=2).scan()
        assert report.removed == 0 and report.missing == 12
        assert {r.status for r in lib.photos_under(root)} == {"missing"} and len(lib.photos_under(root)) == 12
        away.rename(root)
        with Embedder(ColourModel(), batch_size=2, workers=1) as embedder:
            Scanner(lib, embedder, batch_size=2).scan()
        ledger.assert_consistent(lib, expect=12)


def test_a_batch_that_cannot_be_written_is_retried_not_dropped(tmp_path, monkeypatch, caplog, ledger):
    """Another process holds SQLite's write lock past the busy timeout while the watcher
    applies a change: kept for a retry with back-off, said once in one line, counted."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(watcher_module, "RETRY_S", 0.0)
    root = tmp_path / "photos"
    make_photo(root / "first.jpg", (9, 9, 200))
    with Library.open(tmp_path / "lib") as lib, Embedder(ColourModel(), workers=1) as embedder, \
            lock_holders() as hold:
        lib.add_root(root)
        scanner = Scanner(lib, embedder)
        scanner.scan()
        watcher = Watcher(scanner, [root], settle_s=0.0)
        photo = make_photo(root / "second.jpg", (200, 9, 9))
        watcher.handler.dispatch(FileCreatedEvent(str(photo)))
        holder = hold(tmp_path / "lib" / "library.sqlite", 60.0)
        with caplog.at_level(logging.INFO, logger="photosearch.indexer"):
            for _ in range(3):  # it keeps failing: said once, not at every try
                watcher.process_once()
            assert lib.get_by_path(str(photo)) is None and not watcher.idle()  # kept for a retry
            assert watcher.retries.waiting() == {"photos": 1, "cause": "database is locked"}
            said = [r for r in caplog.records if "cannot write the library" in r.getMessage()]
            assert len(said) == 1 and said[0].exc_info is None and "database is locked" in said[0].getMessage()
            holder.kill()
            watcher.process_once()
        assert lib.get_by_path(str(photo)).status == "indexed" and watcher.idle()
        assert watcher.retries.waiting() is None and "carried on" in caplog.text
        ledger.assert_consistent(lib, expect=2)


def test_a_full_disk_while_writing_rows_is_one_clear_error(tmp_path, ledger):
    """SQLite runs out of room in the middle of a scan (simulated with max_page_count)."""
    from sqlalchemy import event

    root = tmp_path / "photos"
    for i in range(4):
        make_photo(root / f"a{i}.jpg", (30 * i, 9, 9))
    with Library.open(tmp_path / "lib") as lib, Embedder(ColourModel(), batch_size=2, workers=1) as embedder:
        lib.add_root(root)
        Scanner(lib, embedder, batch_size=2).scan()
        for i in range(300):
            make_photo(root / f"b{i:03d}.jpg", (i % 256, 99, 9), size=(16 + i % 7, 12))

        def full(dbapi_connection, _record):
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

        event.listen(lib._engine, "connect", full)
        lib._engine.dispose()  # every connection from now on sees a disk that is almost full
        with pytest.raises(WriteFault) as error:
            Scanner(lib, embedder, batch_size=2).scan()
        message = str(error.value)
        assert error.value.fault == "disk full" and 0 < error.value.not_stored <= 300
        assert message.startswith("disk full: ") and "photo(s) not stored" in message and "\n" not in message
        assert len(lib.photos_by_status("indexed")) + error.value.not_stored == 304
        assert lib.check_index() is None  # what was committed has its vectors, nothing half-done
        event.remove(lib._engine, "connect", full)
        lib._engine.dispose()
        Scanner(lib, embedder, batch_size=2).scan()  # room again: the scan simply carries on
        ledger.assert_consistent(lib, expect=304)
