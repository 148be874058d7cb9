"""Issue 12 part 2, bind mounts: a folder of one root bind-mounted inside another root (or
inside its own root) shows the same photos under a second path. They are indexed once, under
their own names, by `index`, by later scans and by the watcher.

Needs root and a working `mount --bind` (skipped otherwise); every mount is undone in the
fixture's cleanup.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.folders import bind_aliases
from photosearch.indexer.scanner import Scanner
from photosearch.indexer.watcher import Watcher
from photosearch.storage import Library
from tests.indexer.stand_ins import make_photo


@pytest.fixture
def bind(tmp_path):
    """`bind(source, target)` bind-mounts a folder; all are unmounted after the test."""
    mounted: list[str] = []

    def mount(source, target) -> None:
        os.makedirs(target, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("bind mounts need root")
        done = subprocess.run(["mount", "--bind", str(source), str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mount --bind not permitted here: {done.stderr.strip()}")
        mounted.append(str(target))

    try:
        yield mount
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", target], check=False)


@pytest.fixture
def two_roots(tmp_path, bind):
    """/data/A with 2020/{x,y}.jpg and a.jpg; /data/B with b.jpg and mnt = A/2020 bound."""
    a, b = tmp_path / "data" / "A", tmp_path / "data" / "B"
    make_photo(a / "2020" / "x.jpg", (255, 0, 0))
    make_photo(a / "2020" / "deep" / "y.jpg", (0, 255, 0))
    make_photo(a / "a.jpg", (0, 0, 255))
    make_photo(b / "b.jpg", (200, 200, 0))
    bind(a / "2020", b / "mnt")
    return a, b


def _paths(lib):
    return sorted(r.path for r in lib.photos_under("/"))


def _index(lib, scanner, path):
    return scanner.scan([lib.add_root(path).path])


def test_a_folder_of_one_root_bound_inside_another_is_indexed_once(two_roots, lib, scanner, model):
    a, b = two_roots
    assert bind_aliases([str(a), str(b)]) == {str(b / "mnt")}
    assert _index(lib, scanner, a).added == 3
    assert _index(lib, scanner, b).added == 1
    expected = sorted(str(p) for p in (a / "2020" / "x.jpg", a / "2020" / "deep" / "y.jpg",
                                       a / "a.jpg", b / "b.jpg"))
    assert _paths(lib) == expected
    encoded = model.images_encoded
    report = scanner.scan()  # both roots again: nothing changes
    assert (report.added, report.removed, report.unchanged) == (0, 0, 4)
    assert _paths(lib) == expected and model.images_encoded == encoded


def test_indexing_the_root_with_the_bind_mount_first_stores_it_once_too(two_roots, lib, scanner):
    a, b = two_roots
    lib.add_root(a)
    assert _index(lib, scanner, b).added == 1  # A is a root of the library: B/mnt is its alias
    assert _index(lib, scanner, a).added == 3
    assert not any("mnt" in p for p in _paths(lib))


def test_a_folder_bound_inside_its_own_root_is_indexed_once(tmp_path, bind, lib, scanner):
    a = tmp_path / "A"
    make_photo(a / "x" / "p.jpg", (255, 0, 0))
    make_photo(a / "x" / "q.jpg", (0, 255, 0))
    bind(a / "x", a / "a-first")  # sorts before x: the walk meets the alias first
    bind(a, a / "y" / "loop")  # the root inside itself
    assert _index(lib, scanner, a).added == 2
    assert _paths(lib) == [str(a / "x" / "p.jpg"), str(a / "x" / "q.jpg")]
    assert scanner.scan().unchanged == 2


def test_a_folder_from_outside_the_roots_bound_inside_one_is_indexed(tmp_path, bind, lib, scanner):
    a, outside = tmp_path / "A", tmp_path / "elsewhere"
    make_photo(outside / "p.jpg", (255, 0, 0))
    a.mkdir()
    bind(outside, a / "usb")
    assert _index(lib, scanner, a).added == 1
    assert _paths(lib) == [str(a / "usb" / "p.jpg")]


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the watcher"
        time.sleep(0.05)


def test_a_photo_added_under_a_bound_folder_while_watching_is_indexed_once(tmp_path, two_roots,
                                                                            model):
    a, b = two_roots
    with Library.open(tmp_path / "lib") as lib, Embedder(model) as embedder:
        scanner = Scanner(lib, embedder)
        lib.add_root(a), lib.add_root(b)
        watcher = Watcher(scanner, [a, b], settle_s=0.1)
        watcher.start(scan_first=True)
        try:
            _wait_for(lambda: len(lib.photos_under("/")) == 4 and watcher.idle())
            make_photo(a / "2020" / "new.jpg", (10, 200, 10))  # also appears as B/mnt/new.jpg
            _wait_for(lambda: lib.get_by_path(str(a / "2020" / "new.jpg")) is not None)
            make_photo(b / "mnt" / "deep" / "via-b.jpg", (10, 10, 200))  # written through B
            _wait_for(lambda: lib.get_by_path(str(a / "2020" / "deep" / "via-b.jpg")) is not None)
            time.sleep(0.5)  # time for any second path to arrive
            _wait_for(watcher.idle)
            scanner.sync_paths([b / "mnt" / "new.jpg", b / "mnt"])  # as an event under B would
        finally:
            watcher.stop()
        paths = _paths(lib)
        assert len(paths) == 6 and not any(os.sep + "mnt" + os.sep in p for p in paths)
