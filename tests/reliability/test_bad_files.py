"""Bad and odd files, one at a time, through the scanner: each is recorded with a clear reason
(or indexed, when it is merely odd) and nothing else in the library changes. Also names:
bytes that are not UTF-8, and names of the full 255 bytes."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.storage import FAILED, INDEXED, Library
from tests.indexer.stand_ins import ColourModel, make_photo
from tests.reliability.bad_files import GALLERY


def snapshot(lib, root) -> dict:
    """Every photo under `root`: id, status and vector (None for a failed one)."""
    vectors = {r.id: lib.get_vector(r.id) for r in lib.photos_under(root)}
    return {r.path: (r.id, r.status, None if vectors[r.id] is None else vectors[r.id].tolist())
            for r in lib.photos_under(root)}


@pytest.fixture
def indexed_folder(tmp_path):
    """(lib, scanner, root) with three good photos already indexed; the library is on disk."""
    root = tmp_path / "photos"
    for i in range(3):
        make_photo(root / f"good{i}.jpg", (40 + 80 * i, 20, 20))
    with Library.open(tmp_path / "lib") as lib, Embedder(ColourModel(), batch_size=4, workers=1) as emb:
        lib.add_root(root)
        scanner = Scanner(lib, emb, batch_size=4)
        assert scanner.scan().added == 3
        yield lib, scanner, root


@pytest.mark.parametrize("specimen", GALLERY, ids=[s.name for s in GALLERY])
def test_a_bad_file_is_recorded_and_nothing_else_changes(indexed_folder, specimen, ledger):
    lib, scanner, root = indexed_folder
    before = snapshot(lib, root)
    path = str(specimen.write(root))
    report = scanner.scan()
    record = lib.get_by_path(path)
    if specimen.reason is None:
        assert (report.added, report.failed) == (1, 0), report
        assert record.status == INDEXED and record.width and record.height
    else:
        assert (report.added, report.failed) == (0, 1), report
        assert record.status == FAILED and specimen.reason in record.error
        assert report.failures == [(path, record.error)]
        assert 0 < len(record.error) < 120 and "\n" not in record.error
    after = snapshot(lib, root)
    assert {p: v for p, v in after.items() if p != path} == before
    assert scanner.scan().failed == report.failed  # a rescan retries it the same way
    ledger.assert_consistent(lib, expect=4)


def write_photo(path: bytes, colour) -> None:
    """A small photo at a bytes path (the name need not be UTF-8)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        Image.new("RGB", (16, 12), colour).save(fh, format="PNG" if path.endswith(b".png") else "JPEG")


NAMES = [
    b"caf\xe9.jpg",  # Latin-1, not UTF-8
    b"\xff\xfe\xfd.png",
    "日本語の写真.jpg".encode(),
    b"a" * 251 + b".jpg",  # 255 bytes: the longest name Linux allows
    "é".encode() * 125 + b".jpg",  # 254 bytes of two-byte characters
    b"\xe9t\xe9/plage.jpg",  # a folder whose name is not UTF-8
    b"x" * 255 + b"/" + b"y" * 251 + b".jpg",  # two names of 255 bytes
]


def test_names_that_are_not_utf8_or_255_bytes_long(tmp_path, ledger):
    root = tmp_path / "photos"
    root.mkdir()
    paths = [os.path.join(os.fsencode(root), name) for name in NAMES]
    for i, path in enumerate(paths):
        write_photo(path, (20 * i, 200, 30))
    with Library.open(tmp_path / "lib") as lib, Embedder(ColourModel(), workers=1) as emb:
        lib.add_root(root)
        scanner = Scanner(lib, emb, batch_size=4)
        report = scanner.scan()
        assert (report.added, report.failed) == (len(NAMES), 0), report.failures
        for path in paths:
            record = lib.get_by_path(os.fsdecode(path))
            assert record is not None and record.status == INDEXED, path
            assert os.fsencode(record.path) == path  # the very bytes come back
        latin = os.fsdecode(paths[0])
        hits = lib.search(lib.get_vector(lib.get_by_path(latin).id), len(NAMES))
        assert {h.photo.path for h in hits} == {os.fsdecode(p) for p in paths}
        assert {r.path for r in lib.photos_under(os.fsdecode(os.path.dirname(paths[5])))} == {
            os.fsdecode(paths[5])}
        renamed = os.path.join(os.fsencode(root), b"renamed-\xe9.jpg")  # a move keeps the vector
        os.rename(paths[0], renamed)
        assert scanner.scan().moved == 1
        os.remove(paths[1])
        assert scanner.scan().removed == 1
        ledger.assert_consistent(lib, expect=len(NAMES) - 1)
    with Library.open(tmp_path / "lib") as lib:  # and again from the files on disk
        assert lib.get_by_path(os.fsdecode(renamed)).status == INDEXED
        ledger.assert_consistent(lib, expect=len(NAMES) - 1)


def test_a_library_folder_inside_a_watched_root_is_not_indexed(tmp_path, ledger):
    root = tmp_path / "photos"
    make_photo(root / "real.jpg", (1, 2, 3))
    with Library.open(root / "[photosearch] library") as lib, Embedder(ColourModel(), workers=1) as emb:
        make_photo(root / "[photosearch] library" / "thumbnails" / "1-abc.jpg", (4, 5, 6))
        lib.add_root(root)
        report = Scanner(lib, emb).scan()
        assert report.added == 1 and [r.path for r in lib.photos_under(root)] == [str(root / "real.jpg")]
        ledger.assert_consistent(lib, expect=1)
