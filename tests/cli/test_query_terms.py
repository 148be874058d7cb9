"""Query arithmetic (--and, --not, --like, weights), any photo as a query, and texts the model
cannot read, through the CLI on the tiny library of test_library_cli."""

from __future__ import annotations

import shutil

import pytest

from photosearch.indexer.query_terms import TermError, describe, parse_expression, split_weight
from tests.cli.test_library_cli import assert_one_line_error, library, ps  # noqa: F401 - a fixture
from tests.daemon.conftest import cli_json


def raw(library, *args) -> dict[str, float]:
    answer = cli_json("--library", library["lib"], "query", *args, "-k", "14", "--checkpoint", library["ckpt"])
    assert len(answer["results"]) == 14
    return {hit["path"]: hit["raw_score"] for hit in answer["results"]}


def test_and_not_and_weights_combine_scores_linearly(library):
    red, circle = raw(library, "red"), raw(library, "circle")
    both = raw(library, "red", "--and", "circle")
    assert both == pytest.approx({p: (red[p] + circle[p]) / 2 for p in red}, abs=2e-4)
    weighted = raw(library, "red", "--and", "circle:3")
    assert weighted == pytest.approx({p: (red[p] + 3 * circle[p]) / 4 for p in red}, abs=2e-4)
    minus = raw(library, "red", "--not", "circle:0.5")
    assert minus == pytest.approx({p: red[p] - 0.5 * circle[p] for p in red}, abs=2e-4)


def test_like_takes_a_photo_in_or_outside_the_library(library, tmp_path):
    photo = library["root"] / "red_circle.png"
    inside = raw(library, "--like", photo)
    outside = tmp_path / "copy of red circle.png"
    shutil.copy(photo, outside)
    assert raw(library, "--like", outside) == pytest.approx(inside, abs=1e-3)
    mixed = raw(library, "blue", "--like", f"{outside}:1")
    blue = raw(library, "blue")
    assert mixed == pytest.approx({p: (blue[p] + inside[p]) / 2 for p in blue}, abs=1e-3)


def test_similar_embeds_a_photo_outside_the_library_and_stores_nothing(library, tmp_path):
    before = cli_json("--library", library["lib"], "status", "--checkpoint", library["ckpt"])
    outside = tmp_path / "elsewhere.png"
    shutil.copy(library["root"] / "blue_square.png", outside)
    answer = cli_json("--library", library["lib"], "similar", outside, "-k", "3", "--checkpoint", library["ckpt"])
    assert answer["results"][0]["path"] == str(library["root"] / "blue_square.png")  # its twin, nearly 1:1
    indexed = cli_json("--library", library["lib"], "similar", library["root"] / "blue_square.png", "-k", "2",
                       "--checkpoint", library["ckpt"])
    assert indexed["results"][0]["raw_score"] == pytest.approx(answer["results"][1]["raw_score"], abs=1e-3)
    after = cli_json("--library", library["lib"], "status", "--checkpoint", library["ckpt"])
    assert after["photos"] == before["photos"] and after["index"] == before["index"]


@pytest.mark.parametrize("args, says", [
    (["similar", "{tmp}/nothing.jpg"], "no such file"),
    (["query", "red", "--like", "{tmp}"], "is a folder"),
    (["similar", "{tmp}/text.jpg"], "cannot be read as a photo"),
    (["query", "red", "--and", "circle:11"], "at most 10"),
    (["query", "--like", "{tmp}/text.jpg"], "cannot be read as a photo"),
])
def test_bad_terms_are_one_line_errors(library, tmp_path, args, says):
    (tmp_path / "text.jpg").write_text("not a photo")
    args = [a.format(tmp=tmp_path) for a in args]
    assert_one_line_error(ps(library, *args, "--checkpoint", library["ckpt"]), says=says)


@pytest.mark.parametrize("text", ["🐶", "🚗🍕", "un perro", "!!!", "a perro"])
def test_a_query_with_no_word_the_model_knows_says_so(library, text):
    result = ps(library, "query", text, "--checkpoint", library["ckpt"])
    assert_one_line_error(result, says="describe the photo")
    assert result.stdout == ""


def test_the_search_box_syntax():
    assert parse_expression("beach + dog:0.5 - night") == [
        {"text": "beach", "weight": 1.0}, {"text": "dog", "weight": 0.5}, {"text": "night", "weight": -1.0}]
    assert parse_expression("t-shirt and a red+blue kite") == [{"text": "t-shirt and a red+blue kite", "weight": 1.0}]
    assert describe(parse_expression("beach + dog:0.5 - night")) == "beach + dog:0.5 - night"
    assert split_weight("dog: 2") == ("dog", 2.0)
    with pytest.raises(TermError, match="at most 10"):  # a trailing :NUMBER is a weight (README)
        split_weight("meeting at 3:30")
    for bad in ("", "- night", "beach + dog:0"):
        with pytest.raises(TermError):
            parse_expression(bad)
