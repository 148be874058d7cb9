"""Search: exact ranking against a numpy reference, the ``under`` filter, similar()."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.storage import IndexConfig, Library, PhotoNotFoundError, SearchHit

from .conftest import brute_force, fill, record, unit_vectors


def test_search_matches_brute_force(lib):
    vectors = unit_vectors(300)
    ids = fill(lib, [f"/pics/{i:04d}.jpg" for i in range(300)], vectors)
    for query in unit_vectors(10, seed=1):
        hits = lib.search(query, 7)
        assert [h.photo.id for h in hits] == brute_force(query, ids, vectors, 7)
        assert all(isinstance(h, SearchHit) for h in hits)
        np.testing.assert_allclose([h.score for h in hits], np.sort(vectors @ query)[::-1][:7], rtol=1e-5)


def test_search_edge_cases(lib):
    assert lib.search(unit_vectors(1)[0], 5) == []  # empty library
    ids = fill(lib, ["/a.jpg", "/b.jpg"], unit_vectors(2))
    assert len(lib.search(unit_vectors(1)[0], 10)) == 2
    assert lib.search(unit_vectors(1)[0], 0) == []
    pending = lib.add_photo(record("/c.jpg"))
    assert pending not in [h.photo.id for h in lib.search(unit_vectors(1)[0], 10)]
    assert sorted(h.photo.id for h in lib.search(unit_vectors(1)[0], 10)) == ids


def test_under_filters_by_folder_not_by_prefix(lib):
    paths = [
        "/p/a/1.jpg", "/p/a/deep/2.jpg", "/p/ab/3.jpg", "/p/A/4.jpg", "/p/a%/5.jpg",
        "/p/a_/6.jpg", "/p/a.jpg", "/q/a/7.jpg",
    ]
    vectors = unit_vectors(len(paths))
    ids = dict(zip(paths, fill(lib, paths, vectors)))
    query = vectors[2]  # closest to a photo *outside* /p/a
    hits = lib.search(query, 10, under="/p/a")
    assert sorted(h.photo.path for h in hits) == ["/p/a/1.jpg", "/p/a/deep/2.jpg"]
    assert [h.photo.path for h in lib.search(query, 10, under="/p/a%")] == ["/p/a%/5.jpg"]
    assert [h.photo.path for h in lib.search(query, 10, under="/p/a_/")] == ["/p/a_/6.jpg"]
    assert lib.search(query, 10, under="/nowhere") == []
    assert len(lib.search(query, 10, under="/")) == len(paths)
    assert lib.search(query, 10, under="/p/a/") == hits
    assert [h.photo.id for h in lib.search(query, 10, under="/p/a/deep")] == [ids["/p/a/deep/2.jpg"]]


def test_under_returns_k_results_when_k_exist(lib):
    # 500 photos elsewhere score higher than any photo in /inside: over-fetching would miss them.
    rng = np.random.default_rng(3)
    query = unit_vectors(1, seed=9)[0]
    outside = np.tile(query, (500, 1)) + 0.01 * rng.standard_normal((500, query.size)).astype(np.float32)
    inside = unit_vectors(20, seed=4)
    paths = [f"/out/{i}.jpg" for i in range(500)] + [f"/inside/{i}.jpg" for i in range(20)]
    ids = fill(lib, paths, np.vstack([outside, inside]))
    hits = lib.search(query, 5, under="/inside")
    assert [h.photo.id for h in hits] == brute_force(query, ids[500:], inside, 5)


def test_missing_photos_never_crowd_out_results(lib):
    query = unit_vectors(1, seed=9)[0]
    near = np.tile(query, (50, 1))
    far = unit_vectors(10, seed=2)
    ids = fill(lib, [f"/usb/{i}.jpg" for i in range(50)] + [f"/home/{i}.jpg" for i in range(10)],
               np.vstack([near, far]))
    lib.mark_missing_under("/usb")
    hits = lib.search(query, 10)
    assert [h.photo.id for h in hits] == brute_force(query, ids[50:], far, 10)


def test_similar_excludes_itself(lib):
    vectors = unit_vectors(50)
    ids = fill(lib, [f"/s/{i}.jpg" for i in range(50)], vectors)
    hits = lib.similar(ids[7], 5)
    assert [h.photo.id for h in hits] == brute_force(vectors[7], ids, vectors, 6)[1:]
    under = lib.similar(ids[7], 3, under="/s")
    assert ids[7] not in [h.photo.id for h in under] and len(under) == 3
    with pytest.raises(PhotoNotFoundError):
        lib.similar(10_000, 3)


@pytest.mark.parametrize("kind", ["flat", "ivf"])  # 200 vectors: IVF probes all 14 lists
def test_updates_and_deletes_are_searched_correctly(kind):
    lib = Library.in_memory(index=IndexConfig(kind=kind))
    vectors = unit_vectors(200)
    ids = fill(lib, [f"/x/{i}.jpg" for i in range(200)], vectors)
    new = unit_vectors(20, seed=5)
    lib.set_vectors(dict(zip(ids[:20], new)))  # replace 20 vectors
    for pid in ids[20:40]:
        lib.remove(pid)  # delete 20 photos
    current = np.vstack([new, vectors[40:]])
    live = ids[:20] + ids[40:]
    stats = lib.stats()
    assert stats["index_type"] == kind and stats["vectors"] == 180
    for query in [*new[:3], *vectors[20:23], *vectors[50:53]]:
        hits = lib.search(query, 10)
        assert [h.photo.id for h in hits] == brute_force(query, live, current, 10)
        np.testing.assert_allclose([h.score for h in hits], np.sort(current @ query)[::-1][:10], rtol=1e-5)
    lib.close()
