"""Watcher: the handler only filters and enqueues; the worker settles and applies changes.

Most tests dispatch watchdog events straight to the handler and step the worker with
`process_once` (no threads, no timing races); one test runs the real observer.
"""

import os
import shutil
import time

import pytest
from watchdog.events import (
    DirCreatedEvent, DirDeletedEvent, DirModifiedEvent, DirMovedEvent, FileAttribEvent,
    FileClosedEvent, FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent,
    FileOpenedEvent,
)

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.indexer.watcher import CHANGED, DELETED, FOLDER, MOVED, Change, Watcher
from photosearch.storage import INDEXED, MISSING, Library
from tests.indexer.stand_ins import ColourModel, make_photo


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    return folder


def _watcher(scanner, *roots, settle_s=0.0, **kwargs):
    return Watcher(scanner, roots, settle_s=settle_s, **kwargs)


def _queued(watcher):
    out = []
    while not watcher.changes.empty():
        out.append(watcher.changes.get_nowait())
    return out


def _paths(lib, folder):
    return sorted(os.path.relpath(r.path, folder) for r in lib.photos_under(folder))


def test_handler_filters_and_enqueues(root, scanner, tmp_path):
    watcher = _watcher(scanner, root)
    handler, r = watcher.handler, str(root)
    events = [
        FileCreatedEvent(f"{r}/a.jpg"),
        FileModifiedEvent(f"{r}/sub/B.JPG"),
        FileClosedEvent(f"{r}/c.png"),
        FileOpenedEvent(f"{r}/a.jpg"),
        FileAttribEvent(f"{r}/d.webp"),
        FileCreatedEvent(f"{r}/notes.txt"),
        FileCreatedEvent(f"{r}/.hidden/x.jpg"),
        FileCreatedEvent(f"{r}/@eaDir/x.jpg"),
        FileCreatedEvent(f"{r}/._a.jpg"),
        FileCreatedEvent(f"{tmp_path}/elsewhere.jpg"),
        DirCreatedEvent(f"{r}/album"),
        DirCreatedEvent(f"{r}/.git"),
        DirModifiedEvent(f"{r}/album"),
        FileDeletedEvent(f"{r}/old.jpg"),
        DirDeletedEvent(f"{r}/gone"),
        FileMovedEvent(f"{r}/x.jpg.part", f"{r}/x.jpg"),
        FileMovedEvent(f"{r}/a.txt", f"{r}/b.txt"),
        DirMovedEvent(f"{r}/album", f"{r}/renamed"),
        FileMovedEvent(f"{r}/keep.jpg", f"{r}/keep.jpg.bak"),
        FileMovedEvent(f"{r}/c.jpg", f"{tmp_path}/outside.jpg"),
        DirMovedEvent(f"{tmp_path}/elsewhere", f"{r}/moved-in"),
        DirMovedEvent(f"{r}/trip", f"{r}/.trip"),
    ]
    for event in events:
        handler.dispatch(event)
    assert _queued(watcher) == [
        Change(CHANGED, f"{r}/a.jpg"),
        Change(CHANGED, f"{r}/sub/B.JPG"),
        Change(CHANGED, f"{r}/c.png"),
        Change(CHANGED, f"{r}/d.webp"),
        Change(FOLDER, f"{r}/album"),
        Change(DELETED, f"{r}/old.jpg"),
        Change(DELETED, f"{r}/gone"),
        Change(CHANGED, f"{r}/x.jpg"),
        Change(MOVED, f"{r}/album", f"{r}/renamed"),
        Change(DELETED, f"{r}/keep.jpg"),
        Change(DELETED, f"{r}/c.jpg"),
        Change(FOLDER, f"{r}/moved-in"),
        Change(DELETED, f"{r}/trip"),
    ]


def test_created_modified_deleted_are_applied(root, lib, scanner):
    watcher = _watcher(scanner, root)
    photo = make_photo(root / "a.jpg", (10, 200, 10))
    watcher.handler.dispatch(FileCreatedEvent(str(photo)))
    watcher.process_once()
    assert lib.get_by_path(str(photo)).status == INDEXED
    make_photo(photo, (200, 10, 10), size=(30, 30))
    watcher.handler.dispatch(FileModifiedEvent(str(photo)))
    watcher.process_once()
    assert lib.get_by_path(str(photo)).width == 30
    photo.unlink()
    watcher.handler.dispatch(FileDeletedEvent(str(photo)))
    watcher.process_once()
    assert lib.photos_under(root) == []


def test_file_being_written_is_embedded_once_complete(root, lib, scanner, model):
    watcher = _watcher(scanner, root, settle_s=0.3)
    photo = root / "copying.jpg"
    make_photo(root.parent / "source.jpg", size=(64, 64))
    data = (root.parent / "source.jpg").read_bytes()
    photo.write_bytes(data[:100])  # half-written
    watcher.handler.dispatch(FileCreatedEvent(str(photo)))
    watcher.process_once()
    time.sleep(0.2)
    with open(photo, "ab") as fh:  # still growing before the settle time is over
        fh.write(data[100:200])
    time.sleep(0.15)
    watcher.process_once()  # deadline passed but the size changed: wait again
    assert lib.get_by_path(str(photo)) is None
    with open(photo, "ab") as fh:
        fh.write(data[200:])
    deadline = time.monotonic() + 3
    while lib.get_by_path(str(photo)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
        watcher.process_once()
    record = lib.get_by_path(str(photo))
    assert record.status == INDEXED and record.size == len(data)
    assert model.images_encoded == 1


def test_events_for_files_already_gone_are_harmless(root, lib, scanner):
    watcher = _watcher(scanner, root)
    for event in [FileCreatedEvent(f"{root}/flash.jpg"), FileModifiedEvent(f"{root}/flash.jpg"),
                  FileDeletedEvent(f"{root}/flash.jpg"), FileDeletedEvent(f"{root}/never.jpg"),
                  DirDeletedEvent(f"{root}/no-such-folder"),
                  FileMovedEvent(f"{root}/ghost.jpg", f"{root}/ghost2.jpg")]:
        watcher.handler.dispatch(event)
    watcher.process_once()
    assert lib.photos_under(root) == []


def test_moves_keep_vectors(root, lib, scanner, model):
    make_photo(root / "a.jpg", (1, 2, 3))
    make_photo(root / "album" / "b.jpg", (4, 5, 6))
    scanner.scan([root])
    ids = {r.path: r.id for r in lib.photos_under(root)}
    encoded = model.images_encoded
    watcher = _watcher(scanner, root)
    (root / "a.jpg").rename(root / "album" / "a.jpg")
    watcher.handler.dispatch(FileMovedEvent(f"{root}/a.jpg", f"{root}/album/a.jpg"))
    (root / "album").rename(root / "trip")
    watcher.handler.dispatch(DirMovedEvent(f"{root}/album", f"{root}/trip"))
    watcher.handler.dispatch(FileMovedEvent(f"{root}/album/b.jpg", f"{root}/trip/b.jpg"))
    watcher.process_once()
    watcher.process_once()  # the moved folder is expanded, then its files settle
    assert _paths(lib, root) == ["trip/a.jpg", "trip/b.jpg"]
    assert lib.get_by_path(f"{root}/trip/a.jpg").id == ids[f"{root}/a.jpg"]
    assert model.images_encoded == encoded


def test_folder_moved_in_and_out(root, lib, scanner, tmp_path):
    watcher = _watcher(scanner, root)
    outside = tmp_path / "outside"
    for i in range(3):
        make_photo(outside / "sub" / f"{i}.jpg", (i * 50, 9, 9))
    outside.rename(root / "arrived")
    watcher.handler.dispatch(DirCreatedEvent(f"{root}/arrived"))
    watcher.process_once()  # expands the folder
    watcher.process_once()  # its files have settled
    assert _paths(lib, root) == ["arrived/sub/0.jpg", "arrived/sub/1.jpg", "arrived/sub/2.jpg"]
    (root / "arrived").rename(tmp_path / "left")
    watcher.handler.dispatch(DirDeletedEvent(f"{root}/arrived"))
    watcher.process_once()
    assert lib.photos_under(root) == []


def test_move_between_roots_is_a_move_not_a_re_embedding(tmp_path, lib, scanner, model):
    first, second = tmp_path / "one", tmp_path / "two"
    make_photo(first / "p.jpg", (7, 77, 177))
    second.mkdir()
    scanner.scan([first, second])
    pid = lib.get_by_path(str(first / "p.jpg")).id
    encoded = model.images_encoded
    watcher = _watcher(scanner, first, second, settle_s=0.2)
    shutil.move(first / "p.jpg", second / "p.jpg")  # two watches: a delete and a create
    watcher.handler.dispatch(FileDeletedEvent(str(first / "p.jpg")))
    time.sleep(0.1)
    watcher.handler.dispatch(FileCreatedEvent(str(second / "p.jpg")))
    deadline = time.monotonic() + 3
    while lib.get_by_path(str(second / "p.jpg")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
        watcher.process_once()
    assert lib.get_by_path(str(second / "p.jpg")).id == pid
    assert model.images_encoded == encoded


def test_unplugged_root_is_marked_missing_not_removed(tmp_path, lib, scanner):
    root = tmp_path / "drive"
    make_photo(root / "a.jpg")
    scanner.scan([root])
    watcher = _watcher(scanner, root)
    root.rename(tmp_path / "away")
    watcher.handler.dispatch(DirDeletedEvent(str(root)))
    watcher.handler.dispatch(FileDeletedEvent(str(root / "a.jpg")))
    watcher.process_once()
    assert [r.status for r in lib.photos_under(root)] == [MISSING]


@pytest.mark.slow
def test_real_observer_end_to_end(tmp_path, model):
    root = tmp_path / "photos"
    root.mkdir()
    reports = []
    with Library.open(tmp_path / "lib") as lib, Embedder(model) as embedder:
        scanner = Scanner(lib, embedder)
        watcher = Watcher(scanner, [root], settle_s=0.2, on_report=reports.append)
        watcher.start()
        try:
            make_photo(root.parent / "incoming.jpg", (12, 34, 56))
            os.replace(root.parent / "incoming.jpg", root / "new.jpg")
            _wait_for(lambda: lib.get_by_path(str(root / "new.jpg")) is not None)
            (root / "new.jpg").unlink()
            _wait_for(lambda: lib.get_by_path(str(root / "new.jpg")) is None)
            for i in range(2):  # a whole folder moved in from outside the watched root
                make_photo(tmp_path / "album" / f"{i}.jpg", (i * 90, 9, 9))
            os.rename(tmp_path / "album", root / "album")
            _wait_for(lambda: len(lib.photos_under(root / "album")) == 2)
            os.rename(root / "album", root / "trip")  # renamed inside: moves, no embedding
            _wait_for(lambda: len(lib.photos_under(root / "trip")) == 2)
            _wait_for(lambda: lib.photos_under(root / "album") == [])
        finally:
            watcher.stop()
        assert watcher._worker is None and watcher._observer is None
    assert sum(r.added for r in reports) == 3 and sum(r.removed for r in reports) == 1
    assert sum(r.moved for r in reports) == 2 and model.images_encoded == 3


def test_start_twice_is_refused_and_stop_is_idempotent(root, scanner):
    watcher = _watcher(scanner, root)
    with watcher:
        with pytest.raises(RuntimeError):
            watcher.start()
    watcher.stop()


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the watcher"
        time.sleep(0.05)


def test_stop_interrupts_the_first_scan(root, lib, tmp_path):
    class Slow(ColourModel):
        def encode_search_images(self, images):
            time.sleep(0.1)
            return super().encode_search_images(images)

    for i in range(60):
        make_photo(root / f"{i:02d}.jpg", (i * 4, 0, 0))
    with Library.open(tmp_path / "lib") as lib, Embedder(Slow(), batch_size=2, workers=1) as emb:
        watcher = Watcher(Scanner(lib, emb, batch_size=2), [root])
        watcher.start(scan_first=True)
        time.sleep(0.4)
        began = time.monotonic()
        watcher.stop()
        assert time.monotonic() - began < 2.0
        assert 0 < len(lib.photos_under(root)) < 60
