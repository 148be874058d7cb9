"""The index kinds the store can choose (flat, IVF): deletes and edits are exact, kinds switch
by size, IVF recall against exact search, filtered search."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.storage import IndexConfig, Library, recall_at_k

from .conftest import brute_force, fill, unit_vectors

KINDS = {
    "flat": IndexConfig(kind="flat"),
    # every list probed: IVF then answers exactly, so its deletes and edits can be held to it
    "ivf": IndexConfig(kind="ivf", ivf_nprobe=1 << 20),
}


def clustered(n: int, dim: int = 32, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors in tight groups, as photo embeddings are (random ones are not)."""
    rng = np.random.default_rng(seed)
    bases = rng.standard_normal((centres, dim)).astype(np.float32)
    vectors = bases[rng.integers(0, centres, n)] + 0.4 * rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_recall_at_k_against_a_naive_count():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[4, 3, 9, 1], [8, -1, -1, -1]])
    assert recall_at_k(approx, exact) == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert recall_at_k(exact, exact) == 1.0
    assert recall_at_k(np.array([9, 9]), np.array([1, 2])) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(exact[:1], exact)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("in_memory", [True, False], ids=["memory", "folder"])
def test_deletes_and_edits_then_queries_equal_exact_search(tmp_path, kind, in_memory):
    config = KINDS[kind]
    n = 600
    vectors = clustered(n, seed=1)
    lib = Library.in_memory(index=config) if in_memory else Library.open(tmp_path / "lib", index=config)
    ids = fill(lib, [f"/k/{i}.jpg" for i in range(n)], vectors)
    assert lib.stats()["index_type"] == kind
    live = dict(zip(ids, vectors))
    rng = np.random.default_rng(2)
    for pid in rng.choice(ids, 60, replace=False).tolist():  # 10% deleted
        lib.remove(pid)
        del live[pid]
    edited = rng.choice(sorted(live), 60, replace=False).tolist()  # 10% re-embedded
    new = clustered(60, seed=3)
    lib.set_vectors(dict(zip(edited, new)))
    live.update(zip(edited, new))
    if not in_memory:  # and the same after a save and a reopen
        lib.close()
        lib = Library.open(tmp_path / "lib", index=config)
        assert lib.stats()["index_repair"] is None
    assert lib.check_index() is None and lib.stats()["index_entries"] == len(live)
    order = sorted(live)
    matrix = np.stack([live[pid] for pid in order])
    for query in [*clustered(10, seed=4), *new[:5]]:
        got = [(h.photo.id, round(h.score, 4)) for h in lib.search(query, 10)]
        expected = brute_force(query, order, matrix, 10)
        assert [pid for pid, _ in got] == expected
        assert [score for _, score in got] == [round(float(live[pid] @ query), 4) for pid in expected]
    lib.close()


def test_ivf_recall_at_10_with_the_default_probes():
    n, k = 20_000, 10
    vectors = clustered(n, dim=64, centres=300, seed=11)
    queries = clustered(100, dim=64, centres=300, seed=11)[::-1] + 0.05
    lib = Library.in_memory(index=IndexConfig(kind="ivf"))
    ids = np.asarray(fill(lib, [f"/r/{i:05d}.jpg" for i in range(n)], vectors))
    assert lib.stats()["index_type"] == "ivf" and lib.stats()["index_lists"] == round(2 * n ** 0.5)
    approx = np.array([[h.photo.id for h in lib.search(q, k)] for q in queries])
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :k]]
    recall = recall_at_k(approx, exact)
    assert recall >= 0.99, recall
    lib.close()


def test_ivf_filtered_search_is_exact_for_small_folders_and_complete_for_big_ones():
    lib = Library.in_memory(index=IndexConfig(kind="ivf", ivf_nprobe=1, exact_filter_limit=20))
    vectors = clustered(600, seed=5)
    paths = [f"/{'small' if i % 60 == 0 else 'big'}/{i}.jpg" for i in range(600)]
    ids = fill(lib, paths, vectors)
    small = [i for i in range(600) if i % 60 == 0]  # 10 photos: scored exactly
    query = clustered(1, seed=6)[0]
    hits = lib.search(query, 4, under="/small")
    assert [h.photo.id for h in hits] == brute_force(query, [ids[i] for i in small], vectors[small], 4)
    # 590 photos: one probed list may hold fewer than k of them; the search then probes all
    big = [i for i in range(600) if i % 60]
    hits = lib.search(query, 50, under="/big")
    assert len(hits) == 50 and {h.photo.id for h in hits} <= {ids[i] for i in big}
    lib.close()


def test_auto_switches_to_ivf_above_the_threshold_and_back(tmp_path):
    config = IndexConfig(ivf_threshold=50)
    vectors = clustered(80, seed=7)
    with Library.open(tmp_path / "lib", index=config) as lib:
        ids = fill(lib, [f"/a/{i}.jpg" for i in range(40)], vectors[:40])
        assert lib.stats()["index_type"] == "flat"
        ids += fill(lib, [f"/b/{i}.jpg" for i in range(40)], vectors[40:])
        lib.save_index()  # 80 > 50: converted while saving
        assert lib.stats()["index_type"] == "ivf"
        assert [h.photo.id for h in lib.search(vectors[70], 1)] == [ids[70]]
        for pid in ids[:50]:  # 30 left: above half the threshold, IVF stays
            lib.remove(pid)
        lib.save_index()
        assert lib.stats()["index_type"] == "ivf"
    with Library.open(tmp_path / "lib") as lib:  # default threshold: back to exact
        stats = lib.stats()
        assert stats["index_type"] == "flat" and "replaced by flat" in stats["index_repair"]
        assert [h.photo.id for h in lib.search(vectors[55], 1)] == [ids[55]]


def test_ivf_lists_are_remade_when_the_library_outgrows_them(tmp_path):
    config = IndexConfig(kind="ivf", ivf_nprobe=1 << 20)
    vectors = clustered(1000, seed=8)
    with Library.open(tmp_path / "lib", index=config) as lib:
        ids = fill(lib, [f"/g/{i}.jpg" for i in range(100)], vectors[:100])
        assert lib.stats()["index_lists"] == 20
        for start in range(100, 1000, 100):  # 10x the size the lists were made for
            ids += fill(lib, [f"/g/{i}.jpg" for i in range(start, start + 100)], vectors[start:start + 100])
            lib.save_index_if_due()
        assert lib.stats()["index_lists"] > 20 and lib.check_index() is None
        assert [h.photo.id for h in lib.search(vectors[999], 1)] == [ids[999]]


def test_index_config_rejects_unknown_kinds():
    with pytest.raises(ValueError):
        IndexConfig(kind="hnsw")
