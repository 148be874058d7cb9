"""storage.shard_index: an IVF index built from 8 small vector shards, merged on disk, mapped.

Vectors are clustered like photo embeddings (bursts around a few hundred centres), ids are
spread over the shards as a cluster run writes them; the exact answer is a brute-force scan.
"""

from __future__ import annotations

import numpy as np
import pytest
from photosearch.storage import StorageError
from photosearch.storage.shard_index import (
    LISTS_NAME,
    ShardIndex,
    build_shard_index,
    default_nlist,
    exact_search,
)
from photosearch.storage.vector_shards import read_shards, write_shard

DIM, SHARDS, PER_SHARD = 32, 8, 1500


def _clustered(rng, n: int, centres: np.ndarray) -> np.ndarray:
    vectors = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((300, DIM))
    everything = {}
    for s in range(SHARDS):
        ids = np.arange(s * PER_SHARD, (s + 1) * PER_SHARD) * 7 + 1  # the library's ids, not positions
        vectors = _clustered(rng, PER_SHARD, centres)
        write_shard(folder, s * PER_SHARD, ids, vectors)
        everything.update(zip(ids.tolist(), vectors))
    queries = _clustered(rng, 50, centres)
    return folder, everything, queries


def test_shards_round_trip_and_a_rewritten_shard_replaces_itself(shards, tmp_path):
    folder, everything, _ = shards
    read = list(read_shards(folder))
    assert len(read) == SHARDS and sum(len(s) for s in read) == len(everything)
    for shard in read:
        for pid, vector in zip(shard.ids, shard.vectors):
            assert np.array_equal(vector, everything[int(pid)])
    write_shard(tmp_path, 0, np.array([1, 2]), np.ones((2, 3)))
    write_shard(tmp_path, 0, np.array([5]), np.zeros((1, 3)))  # the same block written again
    (only,) = read_shards(tmp_path)
    assert only.ids.tolist() == [5]
    (tmp_path / "part-000000000009.npy").write_bytes(b"half written")  # no ids file: incomplete
    assert len(list(read_shards(tmp_path))) == 1
    with pytest.raises(StorageError):
        write_shard(tmp_path, 1, np.array([1, 2, 3]), np.ones((2, 3)))


def test_exact_search_matches_brute_force(shards):
    folder, everything, queries = shards
    ids = np.array(list(everything))
    matrix = np.stack(list(everything.values()))
    scores, found = exact_search(folder, queries, 10)
    expected = ids[np.argsort(-(queries @ matrix.T), axis=1)[:, :10]]
    assert np.array_equal(found, expected)
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("codec", ["SQ8", "PQ8x4"])
def test_index_from_8_shards_reaches_recall_and_is_queried_memory_mapped(shards, tmp_path, codec):
    folder, everything, queries = shards
    info = build_shard_index(folder, tmp_path / "index", codec=codec, nlist=64, workers=4)
    assert info.vectors == SHARDS * PER_SHARD and info.dim == DIM and info.factory == f"IVF64,{codec}"
    assert (tmp_path / "index" / LISTS_NAME).stat().st_size > 0 and not (tmp_path / "index" / "blocks").exists()
    index = ShardIndex.open(tmp_path / "index")
    assert index.index.ntotal == len(everything)
    _, exact = exact_search(folder, queries, 10)
    nprobe, recall, tried = index.choose_nprobe(queries, exact, target=0.95)
    assert [n for n, _ in tried] == [2 ** i for i in range(len(tried))]
    if codec == "SQ8":  # near-exact codes: enough lists probed find the exact top 10
        assert recall >= 0.95 and nprobe < 64 and tried[0][1] < 0.95
    else:  # 4 bytes a vector: the codes, not the probes, limit recall; the best is kept
        assert recall == max(r for _, r in tried) and 0.3 < recall < 0.95 and tried[-1][0] == 64
    _, found = index.search(queries, 10)
    assert set(np.unique(found[found >= 0])) <= set(everything)
    reopened = ShardIndex.open(tmp_path / "index")  # the choice is stored with the index
    assert reopened.info.nprobe == nprobe and reopened.info.recall_at_10 == pytest.approx(recall, abs=1e-4)
    lists = faiss_invlists(reopened)
    assert lists == "OnDiskInvertedLists"  # the lists stay in the mapped file, not in RAM
    moved = tmp_path / "moved"
    (tmp_path / "index").rename(moved)  # a folder moved (or copied to another node) still opens
    assert np.array_equal(ShardIndex.open(moved).search(queries, 10)[1], found)


def faiss_invlists(index: ShardIndex) -> str:
    import faiss

    return type(faiss.downcast_InvertedLists(faiss.extract_index_ivf(index.index).invlists)).__name__


def test_bad_inputs_are_said(tmp_path, shards):
    with pytest.raises(StorageError, match="no shard folder"):
        build_shard_index(tmp_path / "none", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorageError, match="no complete vector shards"):
        build_shard_index(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(StorageError, match="cannot train"):
        build_shard_index(shards[0], tmp_path / "out", nlist=65536)
    with pytest.raises(StorageError, match="no readable shard index"):
        ShardIndex.open(tmp_path / "empty")
    assert default_nlist(1_000_000) == 4096 and default_nlist(100) == 64 and default_nlist(10**10) == 65536
