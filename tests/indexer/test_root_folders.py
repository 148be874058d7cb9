"""Issue 12 part 2: one folder is one root (symlinks, `..`, trailing slashes, nesting), and
libraries that indexed a folder twice before the rule are mended by the next scan."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from photosearch.indexer.root_folders import scan_roots
from photosearch.storage import PhotoRecord
from photosearch.storage.tables import RootRow
from tests.indexer.stand_ins import make_photo


@pytest.fixture
def photos(tmp_path):
    """/data/photos with three photos (one in a subfolder), and ~/Pictures -> /data/photos."""
    real = tmp_path / "data" / "photos"
    make_photo(real / "a.jpg", (255, 0, 0))
    make_photo(real / "b.jpg", (0, 255, 0))
    make_photo(real / "2020" / "c.jpg", (0, 0, 255))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "Pictures").symlink_to(real)
    return real, tmp_path / "home" / "Pictures"


def _all_paths(lib):
    return sorted(r.path for r in lib.photos_under("/"))


def _index(lib, scanner, path):
    """What `photosearch index PATH` does: register the root, then scan what covers it."""
    return scanner.scan([lib.add_root(path).path])


@pytest.mark.parametrize("alias", ["symlink", "dotdot", "trailing_slash"])
def test_one_folder_under_another_name_is_the_same_root(photos, lib, scanner, model, alias):
    real, link = photos
    other = {"symlink": str(link), "dotdot": f"{real}/2020/..", "trailing_slash": f"{real}/"}[alias]
    assert _index(lib, scanner, real).added == 3
    encoded = model.images_encoded
    report = _index(lib, scanner, other)
    assert (report.added, report.unchanged) == (0, 3)
    assert model.images_encoded == encoded
    assert [r.path for r in lib.roots()] == [str(real)]
    assert _all_paths(lib) == sorted(str(p) for p in real.rglob("*.jpg"))


def test_indexing_through_a_symlink_first_stores_real_paths(photos, lib, scanner):
    real, link = photos
    assert _index(lib, scanner, link).added == 3
    assert [r.path for r in lib.roots()] == [str(real)]
    assert all(p.startswith(str(real) + os.sep) for p in _all_paths(lib))
    assert _index(lib, scanner, real).added == 0


def test_a_folder_inside_a_root_is_covered_by_it(photos, lib, scanner, model):
    real, link = photos
    _index(lib, scanner, real)
    encoded = model.images_encoded
    assert lib.add_root(link / "2020").path == str(real)
    assert _index(lib, scanner, real / "2020").added == 0
    assert [r.path for r in lib.roots()] == [str(real)] and model.images_encoded == encoded
    assert len(_all_paths(lib)) == 3


def test_a_wider_root_absorbs_the_roots_inside_it_without_re_embedding(photos, lib, scanner, model):
    real, _ = photos
    make_photo(real.parent / "other.jpg", (9, 9, 9))
    _index(lib, scanner, real / "2020")
    ids = {r.path: r.id for r in lib.photos_under(real)}
    encoded = model.images_encoded
    report = _index(lib, scanner, real.parent)
    assert (report.added, report.unchanged) == (3, 1)  # a, b and other are new; c is kept
    assert model.images_encoded == encoded + 3
    assert [r.path for r in lib.roots()] == [str(real.parent)]
    assert lib.get_by_path(str(real / "2020" / "c.jpg")).id == ids[str(real / "2020" / "c.jpg")]


def test_scan_roots_resolves_and_drops_overlaps(photos):
    real, link = photos
    assert scan_roots([link, f"{real}/", real / "2020", real.parent / "photos" / ".."]) == [
        str(real.parent)
    ]


def test_a_library_that_indexed_one_folder_twice_is_mended_by_the_next_scan(photos, lib, scanner, model):
    real, link = photos
    _index(lib, scanner, real)
    # Before the fix: the alias was a root of its own, and every photo was stored twice.
    dup_ids = {}
    for record in lib.photos_under(real):
        alias_path = str(link) + record.path[len(str(real)):]
        dup_ids[alias_path] = lib.add_photo(PhotoRecord(
            path=alias_path, size=record.size, mtime=record.mtime, fingerprint=record.fingerprint,
            width=record.width, height=record.height, model_fingerprint=record.model_fingerprint,
        ))
        lib.set_vectors({dup_ids[alias_path]: lib.get_vector(record.id)})
    only_alias = make_photo(real / "new_alias_only.jpg", (1, 2, 3))  # stored under the alias only
    lib.add_photo(PhotoRecord(path=str(link / only_alias.name), size=1, mtime=1.0, fingerprint="x"))
    _old_root_row(lib, str(link))
    assert len(_all_paths(lib)) == 7
    encoded = model.images_encoded
    report = scanner.scan()
    assert [r.path for r in lib.roots()] == [str(real)]
    assert _all_paths(lib) == sorted(str(p) for p in real.rglob("*.jpg"))
    assert report.added == 0
    assert model.images_encoded == encoded + 1  # only the stub, whose content was not the file's
    for path in dup_ids:
        assert lib.get_by_path(path) is None
    pid = lib.get_by_path(str(real / "a.jpg")).id
    assert [h.photo.path for h in lib.similar(pid, 10)].count(str(real / "a.jpg")) == 0


def _old_root_row(lib, path):
    """Insert a root row as the library did before roots were resolved (no checks)."""
    with lib._write() as tx:
        tx.session.add(RootRow(path=path, present=True, added_at=datetime(2026, 1, 1)))


@pytest.mark.parametrize("order", ["linked root first", "linking root first"])
def test_a_link_from_one_root_into_another_does_not_index_a_photo_twice(photos, lib, scanner, tmp_path, order):
    """Root B holds a symlinked folder leading into root A: its photos are A's, indexed once,
    whichever root was added first (the walk of B skips it; a later A takes them as its own)."""
    real, _ = photos
    other = tmp_path / "other"
    make_photo(other / "d.jpg", (9, 9, 9))
    (other / "from-a").symlink_to(real / "2020")
    roots = [real, other] if order == "linked root first" else [other, real]
    for root in roots:
        _index(lib, scanner, root)
    scanner.scan()  # every root once more: nothing moves back and forth
    paths = _all_paths(lib)
    assert sorted(os.path.realpath(p) for p in paths) == sorted(set(os.path.realpath(p) for p in paths))
    assert str(real / "2020" / "c.jpg") in paths and str(other / "d.jpg") in paths
    assert len(paths) == 4
