"""Schema versions: upgrading a v1 database, refusing a newer one, ORM/migration agreement."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect

from photosearch.storage import Library, SchemaError, StorageError
from photosearch.storage.migrations import SCHEMA_VERSION
from photosearch.storage.search_filter import SearchFilter
from photosearch.storage.tables import Base

V1_SCHEMA = """
CREATE TABLE meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE photos (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,
    mtime FLOAT NOT NULL, fingerprint TEXT NOT NULL, width INTEGER, height INTEGER,
    indexed_at DATETIME, model_fingerprint TEXT, status TEXT NOT NULL DEFAULT 'pending',
    error TEXT
);
CREATE INDEX ix_photos_fingerprint ON photos (fingerprint);
CREATE TABLE vectors (
    photo_id INTEGER PRIMARY KEY REFERENCES photos (id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
"""


def make_v1_library(folder, vector):
    folder.mkdir()
    conn = sqlite3.connect(folder / "library.sqlite")
    conn.executescript(V1_SCHEMA)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("schema_version", "1"), ("vector_dim", json.dumps(vector.size)),
        ("vectors_generation", "1"), ("model_fingerprint", json.dumps("m-old")),
    ])
    conn.execute(
        "INSERT INTO photos (id, path, size, mtime, fingerprint, width, height, indexed_at,"
        " model_fingerprint, status) VALUES (7, '/old/a.jpg', 10, 1.5, 'fa', 4, 3,"
        " '2023-01-02 03:04:05.000000', 'm-old', 'indexed')"
    )
    conn.execute("INSERT INTO vectors VALUES (7, ?)", (vector.astype("<f4").tobytes(),))
    conn.commit()
    conn.close()


def test_v1_database_is_upgraded_and_keeps_its_data(tmp_path):
    vector = np.arange(4, dtype=np.float32)
    make_v1_library(tmp_path / "lib", vector)
    with Library.open(tmp_path / "lib") as lib:
        assert lib.get_meta("schema_version") == SCHEMA_VERSION == 5
        photo = lib.get(7)
        assert (photo.path, photo.status, photo.width) == ("/old/a.jpg", "indexed", 4)
        local = datetime.fromtimestamp(1.5).astimezone()  # v4: no EXIF time, so the file's mtime
        assert (photo.taken_at, photo.taken_source) == (local.replace(tzinfo=None, microsecond=0), "mtime")
        assert photo.taken_offset == local.utcoffset().total_seconds() // 60
        assert photo.indexed_at.year == 2023
        assert lib.get_meta("model_fingerprint") == "m-old"
        assert lib.stats()["index_repair"] == "missing"  # v1 libraries had no FAISS file yet
        assert [h.photo.id for h in lib.search(vector, 1)] == [7]
        lib.add_root("/old")  # v2 table exists
        assert [r.path for r in lib.roots()] == ["/old"]
    tables = inspect(create_engine(f"sqlite:///{tmp_path / 'lib' / 'library.sqlite'}"))
    assert "taken_at" in {c["name"] for c in tables.get_columns("photos")}
    assert {"ix_photos_status_path", "ix_photos_taken_at"} <= {i["name"] for i in tables.get_indexes("photos")}


def test_v2_exif_times_are_kept_and_the_others_come_from_mtime(tmp_path):
    make_v1_library(tmp_path / "lib", np.ones(4, dtype=np.float32))
    conn = sqlite3.connect(tmp_path / "lib" / "library.sqlite")
    conn.execute("ALTER TABLE photos ADD COLUMN taken_at DATETIME")
    conn.execute("CREATE TABLE roots (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
                 " present BOOLEAN NOT NULL DEFAULT 1, added_at DATETIME NOT NULL)")
    conn.execute("CREATE INDEX ix_photos_status_path ON photos (status, path)")
    conn.execute("UPDATE photos SET taken_at = '2021-07-04 12:34:56.000000'")
    conn.execute("INSERT INTO photos (id, path, size, mtime, fingerprint, status)"
                 " VALUES (8, '/old/b.jpg', 10, 1700000000, 'fb', 'pending')")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with Library.open(tmp_path / "lib") as lib:
        exif, plain = lib.get(7), lib.get(8)
    assert (exif.taken_at, exif.taken_offset, exif.taken_source) == (datetime(2021, 7, 4, 12, 34, 56), None, "exif")
    assert (plain.taken_at, plain.taken_source) == (datetime.fromtimestamp(1700000000), "mtime")


def test_v5_adds_tags_and_perceptual_hashes_to_an_indexed_library(tmp_path):
    """Photos indexed before v5 keep their vectors; they have no tags or hash until reindexed."""
    vector = np.arange(4, dtype=np.float32)
    make_v1_library(tmp_path / "lib", vector)
    with Library.open(tmp_path / "lib") as lib:
        assert lib.hashes_of([7]) == {} and lib.count_unhashed() == 1
        assert lib.tags_of([7]) == {} and lib.tag_counts() == []
        lib.set_hashes({7: -(2**63)})
        assert lib.hashes_of([7]) == {7: -(2**63)} and lib.count_unhashed() == 0
        lib.set_tags({7: [("Seashore", 0.5), ("sandbar", 0.25)]})
        assert lib.tags_of([7]) == {7: [("seashore", 0.5), ("sandbar", 0.25)]}
        assert lib.tag_counts() == [("sandbar", 1), ("seashore", 1)]
        assert [h.photo.id for h in lib.search(vector, 1, where=SearchFilter(tag="SEASHORE"))] == [7]
        assert lib.search(vector, 1, where=SearchFilter(tag="dog")) == []
        lib.remove(7)
        assert lib.tag_counts() == []  # a photo's tags go with it


def test_newer_schema_is_refused(tmp_path):
    folder = tmp_path / "lib"
    Library.open(folder).close()
    conn = sqlite3.connect(folder / "library.sqlite")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="upgrade photosearch"):
        Library.open(folder)
    with pytest.raises(SchemaError):
        Library.open(folder, read_only=True)


def test_read_only_open_refuses_to_migrate(tmp_path):
    make_v1_library(tmp_path / "lib", np.ones(4, dtype=np.float32))
    with pytest.raises(SchemaError, match="photosearch index` or `photosearch watch` once"):
        Library.open(tmp_path / "lib", read_only=True)


def test_not_a_database_is_a_storage_error(tmp_path):
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "library.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError):
        Library.open(folder)


def test_migrations_create_exactly_the_orm_schema(tmp_path):
    Library.open(tmp_path / "lib").close()
    db = inspect(create_engine(f"sqlite:///{tmp_path / 'lib' / 'library.sqlite'}"))
    for table in Base.metadata.sorted_tables:
        # An INTEGER PRIMARY KEY is SQLite's rowid: never NULL, though reflected as nullable.
        migrated = {c["name"]: c["nullable"] and not c["primary_key"] for c in db.get_columns(table.name)}
        declared = {c.name: c.nullable for c in table.columns}
        assert migrated == declared, table.name
        migrated_indexes = {i["name"]: i["column_names"] for i in db.get_indexes(table.name)}
        declared_indexes = {i.name: [c.name for c in i.columns] for i in table.indexes}
        assert migrated_indexes == declared_indexes, table.name
