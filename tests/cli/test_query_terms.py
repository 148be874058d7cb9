"""Query arithmetic (--and, --not, --like, weights), any photo as a query, and texts the model
cannot read, through the CLI on the tiny library of test_library_cli."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from photosearch.indexer import service
from photosearch.indexer.query_terms import TermError, describe, parse_expression, split_weight
from photosearch.indexer.relevance import calibration_path
from tests.cli.test_library_cli import assert_one_line_error, library, ps  # noqa: F401 - a fixture
from tests.daemon.conftest import CAPTIONS, cli_json


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


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, tiny_checkpoint):
    """A copy of the tiny checkpoint with a calibration: relevance σ(20·s) for texts, σ(10·(s − 0.5))
    for photos, "no good match" under 0.6, and the tests' words as the vocabulary."""
    folder = tmp_path_factory.mktemp("calibrated")
    for source in tiny_checkpoint.parent.glob(tiny_checkpoint.stem + ".*"):
        shutil.copy(source, folder / source.name)
    checkpoint = folder / tiny_checkpoint.name
    fingerprint = service.model_fingerprint(checkpoint)
    assert fingerprint == service.model_fingerprint(tiny_checkpoint)
    words = sorted({w for caption in CAPTIONS for w in caption.split()})
    calibration_path(checkpoint).write_text(json.dumps({
        "fingerprint": fingerprint, "text": [20.0, 0.0], "image": [10.0, -5.0], "no_match_below": 0.6,
        "vocabulary": words}))
    return checkpoint


@pytest.mark.parametrize("text", ["🐶", "🚗🍕", "!!!"])
def test_a_query_with_no_word_at_all_says_so(library, text):
    result = ps(library, "query", text, "--checkpoint", library["ckpt"])
    assert_one_line_error(result, says="describe the photo in words")
    assert result.stdout == ""


@pytest.mark.parametrize("text", ["un perro", "a perro", "el coche rojo"])
def test_a_query_with_no_word_the_model_knows_says_so(library, calibrated, text):
    result = ps(library, "query", text, "--checkpoint", calibrated)
    assert_one_line_error(result, says="no word of")
    assert result.stdout == ""
    assert ps(library, "query", "a red perro", "--checkpoint", calibrated).exit_code == 0  # one known word


def test_scores_are_one_calibrated_relevance_for_texts_and_photos(library, calibrated):
    answer = cli_json("--library", library["lib"], "query", "red circle", "-k", "3", "--checkpoint", calibrated)
    assert answer["calibrated"] is True
    for hit in answer["results"]:
        assert hit["score"] == pytest.approx(1 / (1 + math.exp(-20 * hit["raw_score"])), abs=1e-3)
    photo = library["root"] / "red_circle.png"
    like = cli_json("--library", library["lib"], "similar", photo, "-k", "3", "--checkpoint", calibrated)
    for hit in like["results"]:
        assert hit["score"] == pytest.approx(1 / (1 + math.exp(-(10 * hit["raw_score"] - 5))), abs=1e-3)
    # A text and a photo together: the photo's share is put on the text scale first.
    mixed = cli_json("--library", library["lib"], "query", "red circle", "--like", photo, "-k", "14",
                     "--checkpoint", calibrated)
    text = {h["path"]: h["raw_score"] for h in cli_json("--library", library["lib"], "query", "red circle", "-k", "14",
                                                        "--checkpoint", calibrated)["results"]}
    image = {h["path"]: h["raw_score"] for h in cli_json("--library", library["lib"], "query", "--like", photo,
                                                         "-k", "14", "--checkpoint", library["ckpt"])["results"]}
    for hit in mixed["results"]:
        expected = 20 * (text[hit["path"]] + image[hit["path"]] / 2) / 2 - 5 / 2  # a_t·(½s_t + ½(f·s_i + o))
        assert hit["score"] == pytest.approx(1 / (1 + math.exp(-expected)), abs=2e-3)


def test_no_good_match_is_said_on_stderr_and_in_json(library, calibrated):
    answer = cli_json("--library", library["lib"], "query", "red circle", "--checkpoint", calibrated)
    best = answer["results"][0]["score"]
    assert answer["no_good_match"] is (best < 0.6)
    result = ps(library, "query", "red circle", "--checkpoint", calibrated)
    assert ("no good match" in result.stderr) is (best < 0.6)
    uncalibrated = cli_json("--library", library["lib"], "query", "red circle", "--checkpoint", library["ckpt"])
    assert uncalibrated["calibrated"] is False and uncalibrated["no_good_match"] is False
    weak = cli_json("--library", library["lib"], "query", "red circle", "--not", "red circle:0.99", "--checkpoint", calibrated)
    assert weak["no_good_match"] is True  # the scores collapse towards 0: relevance near 0.5 at best
    assert "no good match" in ps(library, "query", "red circle", "--not", "red circle:0.99",
                                 "--checkpoint", calibrated).stderr


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
