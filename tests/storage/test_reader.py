"""`storage.reader.LibraryReader` answers as `Library` does, and steps aside when it cannot."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from photosearch.storage import Library
from photosearch.storage.reader import LibraryReader, ReaderUnavailable
from tests.storage.conftest import record, unit_vectors

PATHS = [f"/photos/{folder}/{i}.jpg" for folder in ("a", "ab", "a/deep") for i in range(8)]
PATHS += ["/photos/a/caf\udce9.jpg", "/photos/a/100%_real.jpg"]


@pytest.fixture
def folder(tmp_path):
    """A saved library: indexed photos, a missing folder, a failed photo, a pending one with
    its old vector, and a new one without."""
    vectors = unit_vectors(len(PATHS))
    with Library.open(tmp_path) as lib:
        ids = fill_named(lib, PATHS, vectors)
        lib.mark_missing_under("/photos/ab")
        lib.mark_failed(PATHS[3], "unreadable", 1000, 1.0, "fp3")
        lib.update_photo(replace(lib.get(ids[4]), status="pending"))  # keeps its old vector
        lib.add_photos([record("/photos/a/new.jpg")])
        lib.set_meta("model_fingerprint", "abc123")
    return tmp_path


def fill_named(lib, paths, vectors):
    with lib.transaction():
        ids = lib.add_photos([record(p, fingerprint=f"fp{i}") for i, p in enumerate(paths)])
        lib.set_vectors(dict(zip(ids, vectors)))
    return ids


def _hits(hits):
    return [(hit.photo, round(hit.score, 6)) for hit in hits]


@pytest.mark.parametrize("under", [None, "/photos/a", "/photos/ab", "/photos/a/deep", "/nowhere"])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_search_equals_library(folder, under, k):
    query = unit_vectors(1, seed=7)[0]
    with Library.open(folder, read_only=True) as lib, LibraryReader.open(folder) as reader:
        assert _hits(reader.search(query, k, under=under)) == _hits(lib.search(query, k, under=under))
        assert reader.get_meta("model_fingerprint") == lib.get_meta("model_fingerprint") == "abc123"
        assert reader.get_meta("absent", 5) == 5


def test_records_round_trip_every_field(folder):
    with Library.open(folder, read_only=True) as lib, LibraryReader.open(folder) as reader:
        hits = reader.search(unit_vectors(1, seed=3)[0], 40)
        assert {hit.photo.path for hit in hits} >= {"/photos/a/caf\udce9.jpg", "/photos/a/100%_real.jpg"}
        for hit in hits:
            assert hit.photo == lib.get(hit.photo.id)
            assert hit.photo.indexed_at is not None


def test_stats_are_left_to_the_library(folder):
    with LibraryReader.open(folder) as reader, pytest.raises(ReaderUnavailable):
        reader.stats()


def test_stale_index_file_is_left_to_the_library(folder):
    db = sqlite3.connect(folder / "library.sqlite")
    with db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'vectors_generation'")
    db.close()
    with pytest.raises(ReaderUnavailable, match="generation"):
        LibraryReader.open(folder)


def test_missing_index_file_is_left_to_the_library(folder):
    (folder / "vectors.faiss").unlink()
    with pytest.raises(ReaderUnavailable, match="missing"):
        LibraryReader.open(folder)


def test_other_schema_version_is_left_to_the_library(folder):
    db = sqlite3.connect(folder / "library.sqlite")
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (json.dumps(1),))
    db.close()
    with pytest.raises(ReaderUnavailable, match="schema"):
        LibraryReader.open(folder)


def test_no_database(tmp_path):
    with pytest.raises(ReaderUnavailable):
        LibraryReader.open(tmp_path)


def test_empty_library_has_no_hits(tmp_path):
    Library.open(tmp_path).close()
    with LibraryReader.open(tmp_path) as reader:
        assert reader.search(np.ones(16, np.float32), 5) == []


def test_other_dimension_is_left_to_the_library(folder):
    with LibraryReader.open(folder) as reader, pytest.raises(ReaderUnavailable):
        reader.search(np.ones(8, np.float32), 5)


def test_reader_never_writes(folder):
    """Only SQLite's own -wal/-shm files may appear (as for any reader of a WAL database)."""
    def files():
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()
                if not p.name.endswith(("-wal", "-shm"))}

    before = files()
    with LibraryReader.open(folder) as reader:
        reader.search(unit_vectors(1)[0], 5)
    assert files() == before


@pytest.mark.parametrize("tag", ["seashore", "elephant", "Indian Elephant", "100%", "_lephant", "dog"])
@pytest.mark.parametrize("under", [None, "/photos/a"])
def test_tag_filter_and_tags_equal_library(folder, tag, under):
    from photosearch.storage.search_filter import SearchFilter

    with Library.open(folder) as lib:
        ids = {r.path: r.id for r in lib.photos_by_status("indexed")}
        a = sorted(i for p, i in ids.items() if p.startswith("/photos/a/"))
        lib.set_tags({a[0]: [("seashore", 0.9), ("indian elephant", 0.3)], a[1]: [("100%", 0.5)],
                      ids["/photos/a/deep/2.jpg"]: [("african elephant", 0.4)]})
    query = unit_vectors(1, seed=7)[0]
    with Library.open(folder, read_only=True) as lib, LibraryReader.open(folder) as reader:
        expected = _hits(lib.search(query, 40, under=under, where=SearchFilter(tag=tag)))
        assert _hits(reader.search(query, 40, under=under, where=SearchFilter(tag=tag))) == expected
        assert reader.tags_of(ids.values()) == lib.tags_of(ids.values())
        with pytest.raises(ReaderUnavailable):
            reader.tag_counts()
    assert (len(expected) > 0) == (tag.lower() in ("seashore", "elephant", "indian elephant", "100%"))


@pytest.mark.parametrize("where", [
    dict(date_from="2021"), dict(date_to="2021-06"), dict(date_from="2021-03-05", date_to="2021-03-05"),
    dict(folder="/photos/a", date_from="2020-12"), dict(date_from="2030")])
def test_date_filters_and_exclude_equal_library(tmp_path, where):
    from datetime import datetime, timedelta

    from photosearch.storage.search_filter import SearchFilter

    vectors = unit_vectors(len(PATHS))
    with Library.open(tmp_path) as lib, lib.transaction():
        ids = lib.add_photos([record(p, fingerprint=f"fp{i}", taken_at=datetime(2020, 11, 1) + timedelta(days=13 * i))
                              for i, p in enumerate(PATHS)])
        lib.set_vectors(dict(zip(ids, vectors)))
    where = SearchFilter(**where)
    query = unit_vectors(1, seed=7)[0]
    with Library.open(tmp_path, read_only=True) as lib, LibraryReader.open(tmp_path) as reader:
        for exclude in (None, ids[5]):
            assert _hits(reader.search(query, 40, where=where, exclude=exclude)) == \
                _hits(lib.search(query, 40, where=where, exclude=exclude))
        assert reader.count_searchable(where) == lib.count_searchable(where)
