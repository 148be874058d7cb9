"""The FAISS file: reopen, rebuild when missing/corrupt/stale, atomic save under ENOSPC."""

from __future__ import annotations

import errno
import json
import os
import shutil

import faiss
import numpy as np
import pytest

from photosearch.storage import IndexSaveError, Library
from photosearch.storage.index_file import INDEX_NAME, SIDECAR_NAME, file_facts

from .conftest import brute_force, fill, unit_vectors

QUERIES = unit_vectors(5, seed=42)


def results(lib: Library) -> list[list[tuple[int, float]]]:
    return [[(h.photo.id, round(h.score, 5)) for h in lib.search(q, 8)] for q in QUERIES]


@pytest.fixture
def saved(tmp_path):
    """A closed library folder with 100 photos; returns (folder, ids, vectors)."""
    vectors = unit_vectors(100)
    with Library.open(tmp_path / "lib") as lib:
        ids = fill(lib, [f"/p/{i}.jpg" for i in range(100)], vectors)
    return tmp_path / "lib", ids, vectors


def test_open_creates_folder_and_reopen_gives_same_results(tmp_path, saved):
    folder, ids, vectors = saved
    assert (folder / "library.sqlite").exists() and (folder / INDEX_NAME).exists()
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"] is None  # loaded from the file, not rebuilt
        assert [[pid for pid, _ in r] for r in results(lib)] == [
            brute_force(q, ids, vectors, 8) for q in QUERIES]
        first = results(lib)
    with Library.open(folder) as lib:
        assert results(lib) == first


def test_missing_index_is_rebuilt_and_saved(saved):
    folder, ids, vectors = saved
    (folder / INDEX_NAME).unlink()
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"] == "missing"
        assert [h.photo.id for h in lib.search(vectors[3], 1)] == [ids[3]]
    assert (folder / INDEX_NAME).exists()
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"] is None


def test_corrupt_index_is_rebuilt(saved):
    folder, ids, vectors = saved
    with Library.open(folder) as lib:
        expected = results(lib)
    garbage = np.random.default_rng(0).bytes((folder / INDEX_NAME).stat().st_size)
    (folder / INDEX_NAME).write_bytes(garbage)
    sidecar = json.loads((folder / SIDECAR_NAME).read_text())
    sidecar.update(file_facts(folder / INDEX_NAME))  # make the sidecar vouch for the garbage
    (folder / SIDECAR_NAME).write_text(json.dumps(sidecar))
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"].startswith("corrupt")
        assert results(lib) == expected


def test_truncated_index_is_rebuilt(saved):
    folder, ids, vectors = saved
    data = (folder / INDEX_NAME).read_bytes()
    (folder / INDEX_NAME).write_bytes(data[: len(data) // 2])
    with Library.open(folder) as lib:
        assert "does not match its sidecar" in lib.stats()["index_repair"]
        assert [h.photo.id for h in lib.search(vectors[9], 1)] == [ids[9]]


def test_stale_index_is_rebuilt(tmp_path, saved):
    folder, ids, vectors = saved
    backup = tmp_path / "backup"
    backup.mkdir()
    for name in (INDEX_NAME, SIDECAR_NAME):
        shutil.copy2(folder / name, backup / name)  # keeps mtime: the pair stays self-consistent
    new = unit_vectors(1, seed=77)[0]
    with Library.open(folder) as lib:
        lib.set_vectors({ids[0]: new})  # same id set, different vector
    for name in (INDEX_NAME, SIDECAR_NAME):
        shutil.copy2(backup / name, folder / name)  # e.g. a crash before the last save
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"].startswith("stale")
        hit = lib.search(new, 1)[0]
        assert hit.photo.id == ids[0] and hit.score == pytest.approx(1.0, abs=1e-5)


def test_index_out_of_sync_with_database_is_rebuilt(saved):
    folder, ids, vectors = saved
    index = faiss.read_index(str(folder / INDEX_NAME))
    index.remove_ids(np.array([ids[5]], dtype=np.int64))  # FAISS lost a vector the DB has
    faiss.write_index(index, str(folder / INDEX_NAME))
    sidecar = json.loads((folder / SIDECAR_NAME).read_text())
    sidecar.update(file_facts(folder / INDEX_NAME), count=index.ntotal)  # a file true to itself
    (folder / SIDECAR_NAME).write_text(json.dumps(sidecar))
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"].startswith("out of sync")
        assert [h.photo.id for h in lib.search(vectors[5], 1)] == [ids[5]]


def test_unsaved_changes_are_not_lost_without_close(saved):
    folder, ids, vectors = saved
    lib = Library.open(folder)
    lib.remove(ids[0])  # process "crashes": no close(), no save_index()
    lib._engine.dispose()
    with Library.open(folder) as reopened:
        assert reopened.stats()["index_repair"].startswith("stale")
        assert ids[0] not in [h.photo.id for h in reopened.search(vectors[0], 3)]


def test_save_under_enospc_keeps_previous_index(saved, monkeypatch):
    folder, ids, vectors = saved
    before = {name: (folder / name).read_bytes() for name in (INDEX_NAME, SIDECAR_NAME)}
    real_write = faiss.write_index

    def disk_full(index, sink):  # a partial write into the save's callback, then the disk fills up
        real_write(faiss.IndexFlatIP(4), sink)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    lib = Library.open(folder)
    lib.remove(ids[1])
    monkeypatch.setattr(faiss, "write_index", disk_full)
    with pytest.raises(IndexSaveError, match="No space left on device"):
        lib.save_index()
    assert {name: (folder / name).read_bytes() for name in before} == before
    assert not list(folder.glob("*.tmp"))
    assert ids[1] not in [h.photo.id for h in lib.search(vectors[1], 3)]  # memory still right
    monkeypatch.setattr(faiss, "write_index", real_write)
    lib.close()  # now the save succeeds
    with Library.open(folder) as reopened:
        assert reopened.stats()["index_repair"] is None
        assert ids[1] not in [h.photo.id for h in reopened.search(vectors[1], 3)]


def test_clearing_all_vectors_removes_the_index_file(saved):
    folder, ids, vectors = saved
    with Library.open(folder) as lib:
        lib.clear_vectors()
    assert not (folder / INDEX_NAME).exists()
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"] is None and lib.search(vectors[0], 3) == []


@pytest.fixture(params=["flat", "ivf"])
def saved_kind(request, tmp_path):
    """A closed library folder of 300 photos with a flat or an IVF index file."""
    from photosearch.storage import IndexConfig

    config = IndexConfig(kind=request.param)
    vectors = unit_vectors(300)
    with Library.open(tmp_path / "lib", index=config) as lib:
        ids = fill(lib, [f"/p/{i}.jpg" for i in range(300)], vectors)
    return tmp_path / "lib", config, ids, vectors


def _rewrite_keeping_sidecar(folder, index) -> None:
    """Write `index` as the file and make the sidecar vouch for it (size, mtime, CRC)."""
    faiss.write_index(index, str(folder / INDEX_NAME))
    sidecar = json.loads((folder / SIDECAR_NAME).read_text())
    sidecar.update(file_facts(folder / INDEX_NAME))
    (folder / SIDECAR_NAME).write_text(json.dumps(sidecar))


def test_read_only_open_maps_the_file_and_answers_as_a_writer_does(saved_kind):
    folder, config, ids, vectors = saved_kind
    with Library.open(folder, index=config) as lib:
        expected = results(lib)
    with Library.open(folder, index=config) as lib:
        in_folder = [[h.photo.id for h in lib.search(q, 8, under="/p")] for q in QUERIES]
    with Library.open(folder, index=config, read_only=True) as lib:
        assert lib.stats()["index_repair"] is None and lib.stats()["index_type"] == config.kind
        assert results(lib) == expected
        assert [[h.photo.id for h in lib.search(q, 8, under="/p")] for q in QUERIES] == in_folder
        assert [h.photo.id for h in lib.search(vectors[7], 1)] == [ids[7]]


@pytest.mark.parametrize("saved_kind", ["ivf"], indirect=True)
def test_ivf_lists_that_do_not_add_up_are_caught_before_faiss_reads_them(saved_kind):
    folder, config, ids, vectors = saved_kind
    with Library.open(folder, index=config) as lib:
        expected = results(lib)
    index = faiss.read_index(str(folder / INDEX_NAME))
    invlists = faiss.downcast_InvertedLists(index.invlists)
    invlists.resize(0, invlists.list_size(0) + 5)  # five entries more than the sidecar's count
    _rewrite_keeping_sidecar(folder, index)
    with Library.open(folder, index=config, read_only=True) as lib:  # small: exact, from the rows
        assert lib.stats()["index_type"] == "flat" and results(lib) == expected
    with Library.open(folder, index=config) as lib:
        assert lib.stats()["index_repair"].startswith("corrupt (the inverted lists do not add up to the index")
        assert results(lib) == expected
    with Library.open(folder, index=config) as lib:
        assert lib.stats()["index_repair"] is None  # the writer above rebuilt and saved it


def test_read_only_open_trusts_the_sidecar_and_a_writer_checks_the_crc(saved):
    """The documented trade: a flipped vector byte, size and mtime unchanged, is seen by the
    next writer (which rebuilds), not by a read-only query process."""
    folder, ids, vectors = saved
    path = folder / INDEX_NAME
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40  # inside the stored vectors
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with Library.open(folder, read_only=True) as lib:
        assert lib.stats()["index_repair"] is None
    with Library.open(folder) as lib:
        assert lib.stats()["index_repair"].startswith("corrupt (checksum mismatch")
        assert [h.photo.id for h in lib.search(vectors[4], 1)] == [ids[4]]
