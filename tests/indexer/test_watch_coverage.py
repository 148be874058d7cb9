"""What inotify does not see, the watcher covers anyway (issue 12, part 1).

- symlinked folders: their targets get watches of their own, events mapped through the link;
- folders past the inotify watch limit (simulated: watchdog's add-watch fails with ENOSPC
  after N folders): reported once, listed, and polled;
- signs of lost events (queue overflow, a watch that disappeared): a rescan of the folder.
"""

from __future__ import annotations

import errno
import logging
import os
import time

import pytest
from watchdog.events import FileCreatedEvent, FileDeletedEvent

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.indexer.watcher import LINK, Change, Watcher
from photosearch.storage import Library
from tests.indexer.stand_ins import make_photo

inotify_c = pytest.importorskip("watchdog.observers.inotify_c")


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the watcher"
        time.sleep(0.05)


@pytest.fixture
def opened(tmp_path, model):
    with Library.open(tmp_path / "lib") as lib, Embedder(model) as embedder:
        yield lib, Scanner(lib, embedder)


def _has(lib, path) -> bool:
    return lib.get_by_path(str(path)) is not None


def test_photo_added_to_a_symlinked_folder_while_watching_is_indexed(tmp_path, opened):
    lib, scanner = opened
    root, elsewhere = tmp_path / "collection", tmp_path / "elsewhere" / "2022"
    make_photo(elsewhere / "old.jpg", (10, 20, 30))
    make_photo(elsewhere / "deep" / "older.jpg", (30, 20, 10))
    root.mkdir()
    (root / "2022").symlink_to(elsewhere)
    watcher = Watcher(scanner, [root], settle_s=0.1)
    watcher.start(scan_first=True)
    try:
        _wait_for(lambda: _has(lib, root / "2022" / "old.jpg") and watcher.idle())
        make_photo(elsewhere / "new.jpg", (200, 10, 10))  # added through the target's path
        _wait_for(lambda: _has(lib, root / "2022" / "new.jpg"))
        make_photo(elsewhere / "deep" / "newer.jpg", (10, 200, 10))
        _wait_for(lambda: _has(lib, root / "2022" / "deep" / "newer.jpg"))
        (elsewhere / "old.jpg").unlink()
        _wait_for(lambda: not _has(lib, root / "2022" / "old.jpg"))
    finally:
        watcher.stop()
    assert not any(r.path.startswith(str(tmp_path / "elsewhere")) for r in lib.photos_under(tmp_path))


def test_symlinks_created_and_removed_while_watching(tmp_path, opened):
    lib, scanner = opened
    root, elsewhere = tmp_path / "collection", tmp_path / "elsewhere" / "2023"
    make_photo(elsewhere / "a.jpg", (10, 20, 30))
    root.mkdir()
    watcher = Watcher(scanner, [root], settle_s=0.1)
    watcher.start(scan_first=True)
    try:
        _wait_for(watcher.idle)
        (root / "2023").symlink_to(elsewhere)  # a link made while running: followed, watched
        _wait_for(lambda: _has(lib, root / "2023" / "a.jpg"))
        make_photo(elsewhere / "b.jpg", (200, 10, 10))
        _wait_for(lambda: _has(lib, root / "2023" / "b.jpg"))
        (root / "2023").unlink()  # the link removed: its photos go, its target is not watched
        _wait_for(lambda: lib.photos_under(root) == [])
        assert watcher.links.links == {}
        make_photo(elsewhere / "c.jpg", (10, 200, 10))
        time.sleep(0.5)
        assert lib.photos_under(root) == [] and watcher.idle()
    finally:
        watcher.stop()


def test_handler_reports_symlinks_as_link_changes(tmp_path, scanner):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    watcher = Watcher(scanner, [root])
    watcher.handler.links["/gone/link"] = "/x"
    watcher.handler.links[str(root / "old-link")] = "/x"
    for event in (FileCreatedEvent(str(root / "link")), FileCreatedEvent(str(root / "notes.txt")),
                  FileDeletedEvent(str(root / "old-link"))):
        watcher.handler.dispatch(event)
    queued = [watcher.changes.get_nowait() for _ in range(watcher.changes.qsize())]
    assert queued == [Change(LINK, str(root / "link")), Change(LINK, str(root / "old-link"))]


@pytest.fixture
def watch_limit(monkeypatch):
    """inotify's watch limit, simulated: adding a watch for more than `limit` folders fails
    with ENOSPC, as the kernel does past fs.inotify.max_user_watches."""
    state = {"limit": 0, "paths": set()}
    real = inotify_c.InotifyFD._get_or_create_watch

    def limited(self, path, mask):
        if path not in state["paths"] and len(state["paths"]) >= state["limit"]:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        state["paths"].add(path)
        return real(self, path, mask)

    monkeypatch.setattr(inotify_c.InotifyFD, "_get_or_create_watch", limited)
    return state


def test_folders_past_the_watch_limit_are_reported_once_and_polled(tmp_path, opened, watch_limit,
                                                                   caplog):
    lib, scanner = opened
    root = tmp_path / "photos"
    folders = [root / f"f{i:02d}" for i in range(8)]
    for i, folder in enumerate(folders):
        make_photo(folder / "a.jpg", (i * 30, 0, 0))
    watch_limit["limit"] = 4  # the root and three of its folders
    watcher = Watcher(scanner, [root], settle_s=0.1, poll_unwatched_s=0.2)
    with caplog.at_level(logging.WARNING, logger="photosearch.indexer"):
        watcher.start(scan_first=True)
        try:
            _wait_for(lambda: len(lib.photos_under(root)) == 8 and watcher.idle())
            unwatched = watcher.unwatched()
            assert len(unwatched) == 5 and set(unwatched) <= {str(f) for f in folders}
            late = unwatched[-1]
            make_photo(tmp_path / "incoming.jpg", (1, 2, 3))
            os.replace(tmp_path / "incoming.jpg", os.path.join(late, "new.jpg"))
            _wait_for(lambda: _has(lib, os.path.join(late, "new.jpg")))  # found by the poll
            os.remove(os.path.join(late, "a.jpg"))
            _wait_for(lambda: not _has(lib, os.path.join(late, "a.jpg")))
            os.mkdir(root / "new-folder")  # past the limit too: polled as well
            make_photo(root / "new-folder" / "b.jpg", (5, 6, 7))
            _wait_for(lambda: _has(lib, root / "new-folder" / "b.jpg"))
            assert str(root / "new-folder") in watcher.unwatched()
        finally:
            watcher.stop()
    said = [r for r in caplog.records if "inotify watch limit" in r.getMessage()]
    assert len(said) == 1 and "fs.inotify.max_user_watches" in said[0].getMessage()


def _emitter_groups(watcher):
    return [emitter._inotify for emitter in watcher._observer.emitters]  # noqa: SLF001


def test_queue_overflow_rescans_what_the_lost_events_could_have_touched(tmp_path, opened,
                                                                        monkeypatch, caplog):
    lib, scanner = opened
    root = tmp_path / "photos"
    make_photo(root / "sub" / "gone.jpg", (10, 20, 30))
    watcher = Watcher(scanner, [root], settle_s=0.1)
    watcher.start(scan_first=True)
    try:
        _wait_for(lambda: _has(lib, root / "sub" / "gone.jpg") and watcher.idle())
        monkeypatch.setattr(watcher.handler, "dispatch", lambda event: None)  # events lost
        make_photo(root / "sub" / "unseen.jpg", (200, 10, 10))
        (root / "sub" / "gone.jpg").unlink()
        time.sleep(0.3)
        assert not _has(lib, root / "sub" / "unseen.jpg")
        with caplog.at_level(logging.WARNING, logger="photosearch.indexer"):
            for group in _emitter_groups(watcher):
                group.on_queue_overflow()  # what watchdog calls on IN_Q_OVERFLOW
            _wait_for(lambda: _has(lib, root / "sub" / "unseen.jpg"))
            _wait_for(lambda: not _has(lib, root / "sub" / "gone.jpg"))
    finally:
        watcher.stop()
    assert any("overflow" in r.getMessage() and str(root) in r.getMessage() for r in caplog.records)


def test_a_watch_that_disappears_on_a_folder_still_there_rescans_it(tmp_path, opened, monkeypatch):
    lib, scanner = opened
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    watcher = Watcher(scanner, [root], settle_s=0.1)
    watcher.start(scan_first=True)
    try:
        _wait_for(watcher.idle)
        monkeypatch.setattr(watcher.handler, "dispatch", lambda event: None)
        make_photo(root / "sub" / "unseen.jpg", (200, 10, 10))
        for group in _emitter_groups(watcher):
            wd = group._active_callbacks_by_path[os.fsencode(root / "sub")]  # noqa: SLF001
            group.on_watch_deleted(wd)  # e.g. IN_IGNORED after an unmount or a remount
        _wait_for(lambda: _has(lib, root / "sub" / "unseen.jpg"))
    finally:
        watcher.stop()



def test_links_inside_a_folder_moved_in_or_renamed_while_watching_are_followed(tmp_path, opened):
    lib, scanner = opened
    root, elsewhere, album = tmp_path / "collection", tmp_path / "elsewhere" / "2024", tmp_path / "album"
    make_photo(elsewhere / "a.jpg", (10, 20, 30))
    root.mkdir()
    album.mkdir()
    (album / "2024").symlink_to(elsewhere)
    watcher = Watcher(scanner, [root], settle_s=0.1)
    watcher.start(scan_first=True)
    try:
        _wait_for(watcher.idle)
        os.rename(album, root / "album")  # a folder holding a link moved into the watched tree
        _wait_for(lambda: _has(lib, root / "album" / "2024" / "a.jpg"))
        make_photo(elsewhere / "b.jpg", (200, 10, 10))
        _wait_for(lambda: _has(lib, root / "album" / "2024" / "b.jpg"))
        os.rename(root / "album", root / "trip")  # renamed: the link's path changes with it
        _wait_for(lambda: _has(lib, root / "trip" / "2024" / "b.jpg") and watcher.idle())
        make_photo(elsewhere / "c.jpg", (10, 200, 10))
        _wait_for(lambda: _has(lib, root / "trip" / "2024" / "c.jpg"))
        assert list(watcher.links.links) == [str(root / "trip" / "2024")]
    finally:
        watcher.stop()


def test_the_watch_limit_is_said_once_across_the_watchers_of_one_daemon(caplog):
    """The daemon starts a new watcher when a root goes and comes back; the limit is not said again."""
    import logging
    import threading

    from photosearch.indexer.coverage import Coverage

    told = threading.Event()
    with caplog.at_level(logging.WARNING):
        Coverage(told=told).cannot_watch("/photos/a")
        Coverage(told=told).cannot_watch("/photos/b")
        Coverage().cannot_watch("/photos/c")  # another daemon: said again
    assert sum("inotify watch limit" in r.getMessage() for r in caplog.records) == 2
