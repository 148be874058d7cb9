"""`photosearch duplicates` on a real library: byte-identical copies, and with --near edited
copies (re-encoded, resized, cropped 5%) grouped with their original and no group mixing two
different photos, through the CLI, the JSON API and the service; query results fold copies."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from photosearch.cli.main import cli
from photosearch.indexer import service
from photosearch.indexer.web import LibraryBackend
from tests.duplicates.conftest import COPIED, OTHERS
from tests.web.conftest import serving


def stem(path: str) -> str:
    return Path(path).name.split(".")[0]


def run(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def test_exact_copies_are_one_group(real_library):
    answer = service.duplicates(False, str(real_library["lib"]))
    assert answer["near"] is False and answer["min_cosine"] is None
    [group] = answer["groups"]
    assert group["kind"] == "exact"
    assert sorted(Path(p["path"]).name for p in group["photos"]) == ["000000160012.jpg", "pizza copy.jpg"]
    assert group["bytes"] == sum(p["size"] for p in group["photos"])
    assert len({p["content"] for p in group["photos"]}) == 1


def test_near_duplicates_group_each_photo_with_its_edited_copies_and_nothing_else(real_library):
    answer = service.duplicates(True, str(real_library["lib"]))
    groups = [[p["path"] for p in g["photos"]] for g in answer["groups"]]
    by_original = {stem(g[0]): g for g in groups}
    assert sorted(by_original) == sorted(COPIED) and len(groups) == len(COPIED)  # no false group
    for group in groups:
        assert len({stem(path) for path in group if "pizza copy" not in path}) == 1  # one photo per group
    pizza = by_original[COPIED[0]]
    assert sorted(Path(p).name for p in pizza) == sorted(
        ["000000160012.jpg", "pizza copy.jpg", "000000160012.q60.jpg", "000000160012.half.jpg",
         "000000160012.crop5.jpg"])
    for stem_ in COPIED[1:]:
        assert len(by_original[stem_]) == 4
    assert all(g["kind"] == "near" for g in answer["groups"])
    # Largest first, so the photo to keep leads each group.
    for group in answer["groups"]:
        pixels = [p["width"] * p["height"] for p in group["photos"]]
        assert pixels == sorted(pixels, reverse=True)
    assert not any(stem(p) in OTHERS for g in groups for p in g)


def test_duplicates_json_shape_and_text(real_library):
    code, out = run("--library", real_library["lib"], "duplicates", "--near", "--json")
    assert code == 0, out
    answer = json.loads(out)
    assert set(answer) >= {"near", "min_cosine", "max_hash_bits", "unhashed", "groups", "source"}
    assert answer["unhashed"] == 0
    photo = answer["groups"][0]["photos"][0]
    assert set(photo) == {"path", "size", "width", "height", "taken_at", "modified", "content"}
    assert isinstance(photo["size"], int) and photo["modified"].endswith("+00:00")
    code, out = run("--library", real_library["lib"], "duplicates")
    assert code == 0 and "group 1 (same file content, 2 photos" in out and "pizza copy.jpg" in out


def test_duplicates_through_the_json_api(real_library):
    with serving(LibraryBackend(real_library["lib"])) as client:
        status, exact = client.json("/api/duplicates")
        assert status == 200 and [g["kind"] for g in exact["groups"]] == ["exact"]
        status, near = client.json("/api/duplicates?near=1")
        assert status == 200 and len(near["groups"]) == len(COPIED)
        photo = near["groups"][0]["photos"][0]
        assert photo["thumb"] == f"/thumb/{photo['id']}"
        status, error = client.json("/api/duplicates?near=yes")
        assert status == 400 and "near" in error["error"]


def test_query_results_fold_byte_identical_copies(real_library):
    answer = service.query("a pizza", 3, library_dir=str(real_library["lib"]))
    paths = [hit["path"] for hit in answer["results"]]
    names = [Path(p).name for p in paths]
    assert len(names) == 3 and not ({"000000160012.jpg", "pizza copy.jpg"} <= set(names))  # one entry
    folded = [hit for hit in answer["results"] if hit["copies"]]
    assert len(folded) == 1
    assert {Path(folded[0]["path"]).name, *map(lambda p: Path(p).name, folded[0]["copies"])} == {
        "000000160012.jpg", "pizza copy.jpg"}
    code, out = run("--library", real_library["lib"], "query", "a pizza", "-k", "3")
    assert code == 0 and "   same photo: " in out
