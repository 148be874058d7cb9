"""Photo rows: add/update/get/move/remove, failures, missing roots, meta, transactions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from photosearch.storage import (
    FAILED, INDEXED, MISSING, PENDING, ClosedError, DimensionError, Library, PathConflictError,
    PhotoNotFoundError, PhotoRecord, StorageError,
)

from .conftest import DIM, fill, record, unit_vectors


def test_add_get_round_trip(lib):
    taken = datetime(2021, 7, 4, 18, 30, 5)
    pid = lib.add_photo(record("/pics/a.jpg", width=640, height=480, taken_at=taken, model_fingerprint="m1"))
    got = lib.get(pid)
    assert got == PhotoRecord(
        path="/pics/a.jpg", size=1000, mtime=1_700_000_000.0, fingerprint="fp:/pics/a.jpg",
        width=640, height=480, taken_at=taken, model_fingerprint="m1", status=PENDING, id=pid,
    )
    assert lib.get_by_path("/pics/a.jpg") == got
    assert lib.get(pid + 1) is None and lib.get_by_path("/pics/none.jpg") is None


def test_add_photo_upserts_by_path_and_keeps_id(lib):
    pid = lib.add_photo(record("/pics/a.jpg", size=1))
    assert lib.add_photo(record("/pics/a.jpg", size=2)) == pid
    assert lib.get(pid).size == 2
    assert lib.stats()["photos"] == 1


def test_update_photo_by_id_or_path(lib):
    pid = lib.add_photo(record("/pics/a.jpg"))
    updated = lib.update_photo(replace(lib.get(pid), width=10, error="x"))
    assert lib.get(pid) == updated and updated.width == 10
    lib.update_photo(record("/pics/a.jpg", height=7))
    assert lib.get(pid).height == 7
    with pytest.raises(PhotoNotFoundError):
        lib.update_photo(record("/pics/nope.jpg"))
    other = lib.add_photo(record("/pics/b.jpg"))
    with pytest.raises(PathConflictError):
        lib.update_photo(replace(lib.get(other), path="/pics/a.jpg"))


def test_invalid_status_is_rejected():
    with pytest.raises(ValueError):
        record("/a.jpg", status="done")


def test_find_by_fingerprint_and_photos_under(lib):
    a = lib.add_photo(record("/pics/a.jpg", fingerprint="same"))
    b = lib.add_photo(record("/pics/sub/b.jpg", fingerprint="same"))
    lib.add_photo(record("/pics2/c.jpg"))
    assert [p.id for p in lib.find_by_fingerprint("same")] == [a, b]
    assert [p.id for p in lib.photos_under("/pics")] == [a, b]
    assert [p.id for p in lib.photos_under("/pics/")] == [a, b]
    assert [p.path for p in lib.photos_under("/pics/sub")] == ["/pics/sub/b.jpg"]


def test_move_keeps_vector_and_rejects_taken_path(lib):
    vectors = unit_vectors(2)
    a, b = fill(lib, ["/pics/a.jpg", "/pics/b.jpg"], vectors)
    moved = lib.move(a, "/pics/renamed.jpg")
    assert moved.path == "/pics/renamed.jpg" and lib.get(a) == moved
    np.testing.assert_array_equal(lib.get_vector(a), vectors[0])
    assert lib.search(vectors[0], 1)[0].photo.path == "/pics/renamed.jpg"
    with pytest.raises(PathConflictError):
        lib.move(a, "/pics/b.jpg")
    with pytest.raises(PhotoNotFoundError):
        lib.move(999, "/pics/c.jpg")


def test_remove_deletes_row_and_vector(lib):
    vectors = unit_vectors(3)
    a, b, c = fill(lib, ["/a.jpg", "/b.jpg", "/c.jpg"], vectors)
    assert lib.remove(b) is True
    assert lib.get(b) is None and lib.get_vector(b) is None
    assert b not in [hit.photo.id for hit in lib.search(vectors[1], 3)]
    assert lib.stats()["vectors"] == 2 and lib.stats()["index_entries"] == 2
    assert lib.remove(b) is False


def test_set_vectors_marks_indexed_and_validates(lib):
    pid = lib.add_photo(record("/a.jpg"))
    lib.set_vectors({pid: unit_vectors(1)[0]})
    photo = lib.get(pid)
    assert photo.status == INDEXED and photo.indexed_at is not None
    assert lib.stats()["dim"] == DIM
    with pytest.raises(DimensionError):
        lib.set_vectors({pid: np.ones(DIM + 1, dtype=np.float32)})
    with pytest.raises(DimensionError):
        lib.search(np.ones(DIM + 1, dtype=np.float32), 1)
    with pytest.raises(PhotoNotFoundError):
        lib.set_vectors({pid + 100: np.ones(DIM, dtype=np.float32)})
    with pytest.raises(StorageError):
        lib.set_vectors({pid: np.full(DIM, np.nan, dtype=np.float32)})
    with pytest.raises(DimensionError):
        lib.set_vectors({pid: np.ones((2, DIM), dtype=np.float32)})
    np.testing.assert_array_equal(lib.get_vector(pid), unit_vectors(1)[0])  # untouched


def test_clear_vectors_allows_a_new_dimension(lib):
    a, b = fill(lib, ["/a.jpg", "/b.jpg"], unit_vectors(2))
    lib.clear_vectors()
    assert lib.get(a).status == PENDING and lib.get_vector(a) is None
    assert lib.search(unit_vectors(1)[0], 5) == [] and lib.stats()["dim"] is None
    new = unit_vectors(2, dim=DIM * 2, seed=1)
    lib.set_vectors({a: new[0], b: new[1]})
    assert [h.photo.id for h in lib.search(new[1], 1)] == [b]


def test_mark_failed_records_error_and_drops_vector(lib):
    (pid,) = fill(lib, ["/a.jpg"], unit_vectors(1))
    assert lib.mark_failed("/a.jpg", "cannot decode", 5, 2.0, "fp2", width=3) == pid
    photo = lib.get(pid)
    assert (photo.status, photo.error, photo.size, photo.fingerprint, photo.width) == (
        FAILED, "cannot decode", 5, "fp2", 3)
    assert lib.get_vector(pid) is None and lib.search(unit_vectors(1)[0], 1) == []
    new = lib.mark_failed("/b.jpg", "truncated", 1, 1.0, "fp3")
    assert [p.id for p in lib.photos_by_status(FAILED)] == [pid, new]


def test_missing_roots_are_hidden_then_restored(lib):
    vectors = unit_vectors(3)
    a, b, c = fill(lib, ["/usb/a.jpg", "/usb/b.jpg", "/home/c.jpg"], vectors)
    pending = lib.add_photo(record("/usb/p.jpg"))
    failed = lib.mark_failed("/usb/f.jpg", "bad", 1, 1.0, "f")
    lib.add_root("/usb")
    assert lib.mark_missing_under("/usb") == 4
    assert lib.roots()[0].present is False
    assert {p.status for p in lib.photos_under("/usb")} == {MISSING}
    assert [h.photo.id for h in lib.search(vectors[0], 5)] == [c]
    assert lib.stats()["by_status"][MISSING] == 4 and lib.stats()["vectors"] == 3
    assert lib.mark_present_under("/usb") == 4
    assert lib.roots()[0].present is True
    statuses = {p.id: p.status for p in lib.photos_under("/usb")}
    assert statuses == {a: INDEXED, b: INDEXED, pending: PENDING, failed: FAILED}
    assert lib.search(vectors[0], 1)[0].photo.id == a


def test_roots_add_remove(lib):
    first = lib.add_root("/photos/")
    assert first.path == "/photos" and lib.add_root("/photos") == first
    assert [r.path for r in lib.roots()] == ["/photos"]
    assert lib.remove_root("/photos") is True and lib.roots() == []


def test_meta_round_trip_and_reserved_keys(lib):
    assert lib.get_meta("model_fingerprint") is None
    assert lib.get_meta("model_fingerprint", "none") == "none"
    lib.set_meta("model_fingerprint", "abc123")
    lib.set_meta("settings", {"k": 5, "roots": ["/a"]})
    assert lib.get_meta("model_fingerprint") == "abc123"
    assert lib.get_meta("settings") == {"k": 5, "roots": ["/a"]}
    assert lib.get_meta("schema_version") >= 2
    with pytest.raises(StorageError):
        lib.set_meta("vector_dim", 3)
    with pytest.raises(StorageError):
        lib.set_meta("bad", object())


def test_transaction_rolls_back_rows_and_vectors(lib):
    vectors = unit_vectors(3)
    (a,) = fill(lib, ["/a.jpg"], vectors[:1])
    with pytest.raises(RuntimeError):
        with lib.transaction():
            b = lib.add_photo(record("/b.jpg"))
            lib.set_vectors({b: vectors[1], a: vectors[2]})
            lib.remove(a)
            raise RuntimeError("boom")
    assert lib.get_by_path("/b.jpg") is None
    assert lib.get(a) is not None
    np.testing.assert_array_equal(lib.get_vector(a), vectors[0])
    assert [h.photo.id for h in lib.search(vectors[0], 5)] == [a]
    assert lib.stats()["index_entries"] == 1


def test_nested_calls_join_one_transaction(lib):
    vectors = unit_vectors(2)
    with lib.transaction():
        a = lib.add_photo(record("/a.jpg"))
        with lib.transaction():  # joins the outer one
            lib.set_vectors({a: vectors[0]})
        assert lib.get(a).status == INDEXED  # reads inside see the open transaction
        assert lib.search(vectors[0], 1) == []  # FAISS changes wait for the commit
        generation = lib.stats()["generation"]
    assert lib.stats()["generation"] == generation + 1
    assert [h.photo.id for h in lib.search(vectors[0], 1)] == [a]


def test_replace_then_remove_in_one_transaction(lib):
    vectors = unit_vectors(4)
    a, b = fill(lib, ["/a.jpg", "/b.jpg"], vectors[:2])
    with lib.transaction():
        lib.set_vectors({a: vectors[2]})
        lib.remove(a)
        lib.set_vectors({b: vectors[3]})
    assert lib.stats()["index_entries"] == 1
    assert [h.photo.id for h in lib.search(vectors[3], 5)] == [b]
    assert lib.search(vectors[3], 1)[0].score == pytest.approx(1.0, abs=1e-5)


def test_closed_library_refuses_calls():
    library = Library.in_memory()
    library.close()
    library.close()  # idempotent
    with pytest.raises(ClosedError):
        library.get(1)
    with pytest.raises(ClosedError):
        library.add_photo(record("/a.jpg"))
