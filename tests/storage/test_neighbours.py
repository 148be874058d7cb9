"""Near-identical pairs from stored vectors: exact below EXACT_LIMIT, an inverted file above,
both finding planted near-copies among clustered vectors and nothing under the cosine."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.storage import Library, neighbours


def clustered(count: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors in loose clusters (cosine ~0.5-0.8 within one), like photos of a few scenes."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    vectors = centres[rng.integers(0, 20, count)] + 0.8 * rng.standard_normal((count, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def with_copies(vectors: np.ndarray, copies: int, seed: int = 1) -> tuple[np.ndarray, set]:
    """`vectors` plus `copies` near-copies (cosine >= 0.98) of the first ones; the planted pairs."""
    rng = np.random.default_rng(seed)
    twins = vectors[:copies] + 0.1 * rng.standard_normal((copies, vectors.shape[1])) / np.sqrt(vectors.shape[1])
    twins /= np.linalg.norm(twins, axis=1, keepdims=True)
    n = len(vectors)
    return np.concatenate([vectors, twins]).astype(np.float32), {(i, n + i) for i in range(copies)}


@pytest.mark.parametrize("exact_limit", [10**9, 0], ids=["exact", "inverted file"])
def test_planted_copies_are_found_and_nothing_below_the_cosine(monkeypatch, exact_limit):
    monkeypatch.setattr(neighbours, "EXACT_LIMIT", exact_limit)
    vectors, planted = with_copies(clustered(3000), 50)
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 7  # ids are not positions
    a, b, cosine = neighbours.near_pairs(ids, vectors, 0.95)
    found = {((x - 7) // 3, (y - 7) // 3) for x, y in zip(a.tolist(), b.tolist())}
    assert found == planted
    assert np.all(a < b) and np.all(cosine >= 0.95)
    assert np.allclose(cosine, np.einsum("pd,pd->p", vectors[(a - 7) // 3], vectors[(b - 7) // 3]), atol=1e-5)


def test_library_pairs_stand_one_photo_per_content_and_skip_hidden_ones(tmp_path):
    from photosearch.storage import PhotoRecord

    vectors, _ = with_copies(clustered(6), 1)  # photo 6 is a near-copy of photo 0
    with Library.open(tmp_path / "lib") as lib:
        ids = lib.add_photos([PhotoRecord(path=f"/p/{i}.jpg", size=1, mtime=0.0, fingerprint=f"f{i}") for i in range(7)]
                             + [PhotoRecord(path="/p/0-copy.jpg", size=1, mtime=0.0, fingerprint="f0")])
        lib.set_vectors(dict(zip(ids, list(vectors) + [vectors[0]])))
        a, b, _ = lib.near_pairs(0.95)
        assert list(zip(a.tolist(), b.tolist())) == [(ids[0], ids[6])]  # not the byte copy: copy_groups has it
        assert [[r.path for r in group] for group in lib.copy_groups()] == [["/p/0-copy.jpg", "/p/0.jpg"]]
        lib.mark_missing_under("/p")
        assert len(lib.near_pairs(0.95)[0]) == 0 and lib.copy_groups() == []


def test_library_pairs_use_each_photos_newest_vector_and_skip_deleted_ones(tmp_path):
    from photosearch.storage import PhotoRecord

    vectors, _ = with_copies(clustered(6), 2)  # 6 ~ 0, 7 ~ 1
    with Library.open(tmp_path / "lib") as lib:
        ids = lib.add_photos([PhotoRecord(path=f"/p/{i}.jpg", size=1, mtime=0.0, fingerprint=f"f{i}") for i in range(8)])
        lib.set_vectors(dict(zip(ids, vectors)))
        lib.set_vectors({ids[6]: -vectors[0]})  # replaced: no longer like photo 0
        lib.remove(ids[7])
        assert len(lib.near_pairs(0.95)[0]) == 0
        lib.set_vectors({ids[6]: vectors[0]})
        assert list(zip(*[x.tolist() for x in lib.near_pairs(0.95)[:2]])) == [(ids[0], ids[6])]
