"""The approximate (HNSW) index: recall against exact search, tombstones, kind switching."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.storage import IndexConfig, Library, recall_at_k

from .conftest import brute_force, fill, unit_vectors


def test_recall_at_k_against_a_naive_count():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[4, 3, 9, 1], [8, -1, -1, -1]])
    assert recall_at_k(approx, exact) == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert recall_at_k(exact, exact) == 1.0
    assert recall_at_k(np.array([9, 9]), np.array([1, 2])) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(exact[:1], exact)


def test_hnsw_recall_at_10_on_20k_random_vectors():
    n, dim, k = 20_000, 64, 10
    vectors = unit_vectors(n, dim, seed=11)
    queries = unit_vectors(100, dim, seed=12)
    lib = Library.in_memory(index=IndexConfig(kind="hnsw"))
    ids = np.asarray(fill(lib, [f"/r/{i:05d}.jpg" for i in range(n)], vectors))
    assert lib.stats()["index_type"] == "hnsw"
    approx = np.array([[h.photo.id for h in lib.search(q, k)] for q in queries])
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :k]]
    recall = recall_at_k(approx, exact)
    assert recall >= 0.99, recall
    lib.close()


def test_hnsw_deletes_are_tombstoned_persisted_then_compacted(tmp_path):
    config = IndexConfig(kind="hnsw")
    vectors = unit_vectors(400)
    with Library.open(tmp_path / "lib", index=config) as lib:
        ids = fill(lib, [f"/h/{i}.jpg" for i in range(400)], vectors)
        for pid in ids[:10]:  # 2.5% garbage: kept as tombstones
            lib.remove(pid)
    with Library.open(tmp_path / "lib", index=config) as lib:
        stats = lib.stats()
        assert stats["index_repair"] is None and stats["index_garbage"] == 10
        assert [h.photo.id for h in lib.search(vectors[0], 5)] == brute_force(vectors[0], ids[10:], vectors[10:], 5)
        for pid in ids[10:40]:  # now 10% garbage: the next save compacts
            lib.remove(pid)
        lib.save_index()
        assert lib.stats()["index_garbage"] == 0 and lib.stats()["index_entries"] == 360
        assert [h.photo.id for h in lib.search(vectors[20], 5)] == brute_force(vectors[20], ids[40:], vectors[40:], 5)


def test_hnsw_filtered_search_is_exact_for_small_folders():
    lib = Library.in_memory(index=IndexConfig(kind="hnsw"))
    vectors = unit_vectors(300)
    paths = [f"/{'small' if i % 30 == 0 else 'big'}/{i}.jpg" for i in range(300)]
    ids = fill(lib, paths, vectors)
    small = [i for i in range(300) if i % 30 == 0]
    query = unit_vectors(1, seed=3)[0]
    hits = lib.search(query, 4, under="/small")
    assert [h.photo.id for h in hits] == brute_force(query, [ids[i] for i in small], vectors[small], 4)


def test_auto_switches_to_hnsw_above_the_threshold(tmp_path):
    config = IndexConfig(hnsw_threshold=50)
    vectors = unit_vectors(80)
    with Library.open(tmp_path / "lib", index=config) as lib:
        ids = fill(lib, [f"/a/{i}.jpg" for i in range(40)], vectors[:40])
        assert lib.stats()["index_type"] == "flat"
        ids += fill(lib, [f"/b/{i}.jpg" for i in range(40)], vectors[40:])
        lib.save_index()  # 80 > 50: converted while saving
        assert lib.stats()["index_type"] == "hnsw"
        assert [h.photo.id for h in lib.search(vectors[70], 1)] == [ids[70]]
    with Library.open(tmp_path / "lib") as lib:  # default threshold: back to exact
        stats = lib.stats()
        assert stats["index_type"] == "flat" and "replaced by flat" in stats["index_repair"]
        assert [h.photo.id for h in lib.search(vectors[5], 1)] == [ids[5]]


def test_index_config_rejects_unknown_kinds():
    with pytest.raises(ValueError):
        IndexConfig(kind="ivf")
