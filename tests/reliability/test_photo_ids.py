"""Photo ids are never handed out twice: an old `/photo/ID` link or a cached thumbnail never
shows another photo, in a new library and in one upgraded from the schema before (v2)."""

from __future__ import annotations

import sqlite3

import numpy as np

from photosearch.storage import Library
from photosearch.storage import migrations
from tests.storage.conftest import fill, record, unit_vectors

DIM = 16


def test_the_id_of_a_deleted_newest_photo_is_never_given_again(tmp_path, ledger):
    with Library.open(tmp_path / "lib") as lib:
        ids = fill(lib, [f"/p/{i}.jpg" for i in range(5)], unit_vectors(5, DIM))
        lib.remove(ids[-1])  # the newest: plain INTEGER PRIMARY KEY would hand its id out again
        new = lib.add_photo(record("/p/new.jpg"))
        assert new > ids[-1]
    with Library.open(tmp_path / "lib") as lib:  # nor after a restart
        lib.remove(new)
        assert lib.add_photo(record("/p/newer.jpg")) > new
        assert lib.get(ids[-1]) is None and lib.get(new) is None


def make_v2_library(folder, monkeypatch, count: int) -> tuple[list[int], np.ndarray]:
    """A library written by the code of schema v2 (ids without AUTOINCREMENT), FAISS file
    included: photos, vectors, a root, a deleted photo in the middle and one at the end."""
    with monkeypatch.context() as patched:
        # v2's tables plus the taken-at columns of v4, which today's ORM reads (v3 rebuilds the
        # table without them, and v4 adds them back).
        def v2_readable_today(conn):
            migrations._v1_to_v2(conn)
            migrations._v3_to_v4(conn)

        patched.setattr(migrations, "MIGRATIONS", {1: migrations.MIGRATIONS[1], 2: v2_readable_today})
        patched.setattr(migrations, "SCHEMA_VERSION", 2)
        vectors = unit_vectors(count, DIM, seed=3)
        with Library.open(folder) as lib:
            ids = fill(lib, [f"/photos/{i:03d}.jpg" for i in range(count)], vectors)
            lib.add_root("/photos")
            lib.mark_failed("/photos/bad.jpg", "cannot decode: truncated", 10, 1.0, "fp-bad")
            lib.remove(ids[3])
        schema = sqlite3.connect(folder / "library.sqlite").execute(
            "SELECT sql FROM sqlite_master WHERE name = 'photos'").fetchone()[0]
        assert "AUTOINCREMENT" not in schema  # really the old table
    keep = [i for i in ids if i != ids[3]]
    return keep, np.delete(vectors, 3, axis=0)


def test_upgrading_a_v2_library_keeps_ids_vectors_and_references(tmp_path, monkeypatch, ledger):
    folder = tmp_path / "lib"
    ids, vectors = make_v2_library(folder, monkeypatch, count=40)
    with Library.open(folder) as lib:
        assert lib.get_meta("schema_version") == migrations.SCHEMA_VERSION == 5
        assert lib.stats()["index_repair"] is None  # same ids: the saved FAISS file still fits
        stored, stored_vectors = lib.ids_and_vectors()
        assert stored.tolist() == ids and np.array_equal(stored_vectors, vectors)
        assert [lib.get(pid).path for pid in ids[:3]] == [f"/photos/{i:03d}.jpg" for i in range(3)]
        assert lib.get_by_path("/photos/bad.jpg").error == "cannot decode: truncated"
        assert [r.path for r in lib.roots()] == ["/photos"]
        assert [h.photo.id for h in lib.search(vectors[10], 1)] == [ids[10]]
        assert lib.check_index() is None
        newest = max(ids + [lib.get_by_path("/photos/bad.jpg").id])
        lib.remove(newest)  # from now on an id that leaves is never given again
        assert lib.add_photo(record("/photos/new.jpg")) > newest
        lib.remove(ids[0])  # references still cascade: the vector goes with its photo
        assert lib.get_vector(ids[0]) is None
        ledger.count_audit(len(ids) - 1, index_mismatch=lib.check_index())
    db = sqlite3.connect(folder / "library.sqlite")
    schema = db.execute("SELECT sql FROM sqlite_master WHERE name = 'photos'").fetchone()[0]
    assert "AUTOINCREMENT" in schema
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA foreign_keys").fetchone() == (0,)  # a plain connection: off by default
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'photos'")}
    assert {"ix_photos_fingerprint", "ix_photos_status_path"} <= indexes


def test_an_upgraded_library_enforces_foreign_keys_again(tmp_path, monkeypatch):
    """The rebuild runs with foreign keys off; every later connection has them on."""
    folder = tmp_path / "lib"
    make_v2_library(folder, monkeypatch, count=5)
    with Library.open(folder) as lib:
        with lib._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_read_only_open_of_an_older_library_says_which_command_upgrades_it(tmp_path, monkeypatch):
    import pytest

    from photosearch.storage.errors import SchemaError

    make_v2_library(tmp_path, monkeypatch, 6)
    with pytest.raises(SchemaError, match=r"photosearch index` or `photosearch watch` once"):
        Library.open(tmp_path, read_only=True)
