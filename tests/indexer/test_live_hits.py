"""Issue 12 part 3: search hits whose files are gone are skipped, checked cheaply (one stat
per hit looked at) and refilled to k."""

from __future__ import annotations

import os
from types import SimpleNamespace

from photosearch.indexer.live_hits import live_hits


def _hits(paths):
    return [SimpleNamespace(photo=SimpleNamespace(path=str(p)), score=1.0) for p in paths]


def _searcher(paths, calls):
    def search(n):
        calls.append(n)
        return _hits(paths[:n])

    return search


def test_gone_files_are_skipped_and_k_is_refilled(tmp_path):
    paths = [tmp_path / f"{i}.jpg" for i in range(20)]
    for p in paths:
        p.write_bytes(b"x")
    for p in paths[:3]:
        os.remove(p)
    calls = []
    hits = live_hits(_searcher(paths, calls), 5)
    assert [h.photo.path for h in hits] == [str(p) for p in paths[3:8]]
    assert len(calls) == 2  # one more search, not one per missing hit


def test_all_gone_ends_when_the_library_runs_out(tmp_path):
    paths = [tmp_path / f"{i}.jpg" for i in range(7)]
    calls = []
    assert live_hits(_searcher(paths, calls), 3) == []
    assert calls[-1] > 7


def test_nothing_gone_costs_one_search(tmp_path):
    paths = [tmp_path / f"{i}.jpg" for i in range(4)]
    for p in paths:
        p.write_bytes(b"x")
    calls = []
    assert len(live_hits(_searcher(paths, calls), 4)) == 4 and calls == [4]


def test_the_photo_itself_under_another_name_is_left_out(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    os.link(photo, tmp_path / "hardlink.jpg")
    (tmp_path / "other.jpg").write_bytes(b"x")
    paths = [tmp_path / "hardlink.jpg", tmp_path / "other.jpg"]
    hits = live_hits(_searcher(paths, []), 5, same_as=str(photo))
    assert [h.photo.path for h in hits] == [str(tmp_path / "other.jpg")]


def test_trust_index_answers_without_looking_at_files(tmp_path, monkeypatch):
    """The benchmarks' synthetic libraries have no files: PHOTOSEARCH_TRUST_INDEX=1 skips the check."""
    paths = [tmp_path / f"{i}.jpg" for i in range(6)]  # none exists
    monkeypatch.setenv("PHOTOSEARCH_TRUST_INDEX", "1")
    calls = []
    assert [h.photo.path for h in live_hits(_searcher(paths, calls), 3)] == [str(p) for p in paths[:3]]
    assert len(calls) == 1
