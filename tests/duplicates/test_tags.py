"""Automatic tags: stored per photo when indexed (copies share them), listed with counts, shown
in results, and `--tag` filtering query and similar inside the search (CLI and JSON API)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from photosearch.cli.main import cli
from photosearch.indexer.web import LibraryBackend
from photosearch.miniclip.tags import photo_tags, tag_names
from photosearch.storage import Library
from tests.duplicates.conftest import COPIED
from tests.web.conftest import serving


def run(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def test_tag_names_are_the_first_synonym_and_unique():
    names = tag_names(["tench, Tinca tinca", "crane", "crane", "maillot", "maillot, tank suit", "Great Dane"])
    assert names == ["tench", "crane (bird)", "crane (machine)", "maillot", "maillot (tank suit)", "great dane"]


def test_photo_tags_keep_the_probable_classes_best_first():
    probs = np.array([[0.05, 0.7, 0.25], [0.34, 0.33, 0.33]], dtype=np.float32)
    assert photo_tags(probs, ["a", "b", "c"], threshold=0.2) == [[("b", 0.7), ("c", 0.25)],
                                                                 [("a", 0.34), ("b", 0.33), ("c", 0.33)]]
    assert photo_tags(probs, ["a", "b", "c"], threshold=0.2, limit=1)[1] == [("a", 0.34)]
    with pytest.raises(ValueError):
        photo_tags(probs, ["a", "b"])


def test_tags_are_stored_and_listed(real_library):
    with Library.open(real_library["lib"], read_only=True) as lib:
        by_path = {r.path.rsplit("/", 1)[-1]: r.id for r in lib.photos_by_status("indexed")}
        tags = lib.tags_of(by_path.values())
    assert tags[by_path["000000160012.jpg"]][0][0] == "pizza"
    assert tags[by_path["pizza copy.jpg"]] == tags[by_path["000000160012.jpg"]]  # a copy shares them
    assert tags[by_path["000000519208.jpg"]][0][0] == "indian elephant"
    code, out = run("--library", real_library["lib"], "tags", "--json")
    assert code == 0, out
    rows = json.loads(out)["tags"]
    counts = {row["name"]: row["photos"] for row in rows}
    assert counts["pizza"] >= 5 and counts["indian elephant"] == 4 and counts["trolleybus"] >= 4
    assert [row["photos"] for row in rows] == sorted(counts.values(), reverse=True)  # most common first
    code, out = run("--library", real_library["lib"], "tags")
    assert code == 0 and out.splitlines()[0].split(maxsplit=1) == [str(rows[0]["photos"]), rows[0]["name"]]


def test_tag_filters_query_and_similar_through_the_cli(real_library):
    code, out = run("--library", real_library["lib"], "query", "a pizza", "--tag", "elephant", "-k", "20", "--json")
    assert code == 0, out
    answer = json.loads(out)
    assert answer["tag"] == "elephant" and len(answer["results"]) == 4  # the photo and its 3 edits, not pizzas
    assert all(any(t["name"] == "indian elephant" for t in hit["tags"]) for hit in answer["results"])
    photo = real_library["root"] / f"{COPIED[2]}.jpg"
    code, out = run("--library", real_library["lib"], "similar", photo, "--tag", "trolleybus", "--json")
    assert code == 0, out
    assert all(any(t["name"] == "trolleybus" for t in hit["tags"]) for hit in json.loads(out)["results"])
    code, out = run("--library", real_library["lib"], "query", "a pizza", "--tag", "golden retriever")
    assert code == 1 and "no indexed photo is tagged 'golden retriever'" in out and "photosearch tags" in out


def test_tag_filter_and_tags_through_the_json_api(real_library):
    with serving(LibraryBackend(real_library["lib"])) as client:
        status, answer = client.json("/api/search?q=a%20pizza&k=20&tag=indian%20elephant")
        assert status == 200 and len(answer["results"]) == 4
        assert all(hit["tags"][0]["name"] == "indian elephant" for hit in answer["results"])
        status, tags = client.json("/api/tags")
        assert status == 200 and {"name": "indian elephant", "photos": 4} in tags["tags"]
        status, answer = client.json("/api/search?q=a%20pizza&tag=%01")
        assert status == 400


def test_the_demo_library_indexed_by_another_model_is_embedded_again(tmp_path):
    """A demo library from an older photosearch (another model fingerprint, no tags) is the demo's
    own: the demo re-embeds it, and its photos get their tags, instead of refusing to start."""
    import shutil

    from photosearch.indexer.demo import Demo
    from tests.duplicates.conftest import DEMO

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMO / f"{COPIED[0]}.jpg", photos / "pizza.jpg")
    said = []
    demo = Demo(tmp_path / "lib", photos, results_dir=tmp_path / "results", log=said.append)
    demo.prepare()
    demo.backend.close()
    with Library.open(tmp_path / "lib") as lib:
        lib.set_meta("model_fingerprint", "an-older-model")
        lib.set_tags({1: []})
    demo = Demo(tmp_path / "lib", photos, results_dir=tmp_path / "results", log=said.append)
    try:
        demo.prepare()
    finally:
        demo.backend.close()
    assert any("another model" in line for line in said)
    with Library.open(tmp_path / "lib", read_only=True) as lib:
        assert lib.tag_counts() == [("pizza", 1)]
