"""`photosearch demo` (tiny real model, drawn photos), `serve`'s CLI errors, and the bundled
demo library's files and licences."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from photosearch.cli.main import cli
from photosearch.indexer import demo
from photosearch.indexer.lock import LibraryLock
from tests.daemon.conftest import draw

LINE = re.compile(r"^(\d+)\. (/.+) \(score: (-?\d+\.\d{3})(?:, taken \d{4}-\d{2}-\d{2})?\)$")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "photos"


@pytest.fixture
def photos(tmp_path) -> Path:
    for i, (colour, shape) in enumerate([("red", "circle"), ("blue", "square"), ("green", "triangle")]):
        draw(tmp_path / "photos" / f"{colour}_{shape}.png", colour, shape, variant=i)
    return tmp_path / "photos"


def run(*args, input=None, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env)


def test_batch_prints_results_and_saves_a_grid_per_query(tmp_path, photos, tiny_checkpoint):
    lib, results = tmp_path / "lib", tmp_path / "results"
    args = ("--library", lib, "demo", "--batch", "-k", "2", "--photos", photos,
            "--checkpoint", tiny_checkpoint, "--results-dir", results)
    result = run(*args)
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert [line[len("query: "):] for line in out if line.startswith("query: ")] == list(demo.BATCH_QUERIES)
    hits = [LINE.match(line) for line in out if LINE.match(line)]
    assert len(hits) == 2 * len(demo.BATCH_QUERIES) and all(Path(h.group(2)).parent == photos for h in hits)
    grids = [Path(line[len("grid: "):]) for line in out if line.startswith("grid: ")]
    assert len(grids) == len(demo.BATCH_QUERIES) and all(g.parent == results and g.stat().st_size for g in grids)
    assert "3 photos embedded" in result.stderr
    assert f"photosearch --library {lib} serve" in result.stderr and "open the link it prints" in result.stderr

    again = run(*args)  # incremental: nothing is embedded twice
    assert again.exit_code == 0, again.output
    assert "0 photos embedded, 3 already indexed" in again.stderr


def test_interactive_queries_until_an_empty_line(tmp_path, photos, tiny_checkpoint):
    result = run("--library", tmp_path / "lib", "demo", "--photos", photos, "--checkpoint", tiny_checkpoint,
                 "--results-dir", tmp_path / "results", "-k", "3", input="a red circle\n  \nnot asked\n")
    assert result.exit_code == 0, result.output
    assert [LINE.match(line).group(1) for line in result.stdout.splitlines() if LINE.match(line)] == ["1", "2", "3"]
    assert (tmp_path / "results" / "demo-a-red-circle.png").is_file()
    assert not (tmp_path / "results" / "demo-not-asked.png").exists()
    assert "query> " in result.stderr


def test_end_of_input_ends_it(tmp_path, photos, tiny_checkpoint):
    result = run("--library", tmp_path / "lib", "demo", "--photos", photos, "--checkpoint", tiny_checkpoint,
                 "--results-dir", tmp_path / "results", input="")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and not (tmp_path / "results").exists()


def test_demo_library_is_beside_the_default_one_whatever_photosearch_library_says(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("PHOTOSEARCH_LIBRARY", str(tmp_path / "my-real-library"))
    assert demo.demo_library_dir() == tmp_path / "data" / "photosearch-demo"


def test_the_environment_variable_does_not_send_demo_photos_into_the_users_library(tmp_path, photos, tiny_checkpoint):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "PHOTOSEARCH_LIBRARY": str(tmp_path / "mine")}
    result = run("demo", "--photos", photos, "--checkpoint", tiny_checkpoint, input="", env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "photosearch-demo" / "library.sqlite").is_file()
    assert not (tmp_path / "mine").exists()


def test_user_errors_are_one_line(tmp_path, tiny_checkpoint):
    for args, says in [
        (("--library", tmp_path / "lib", "demo", "--batch", "--photos", tmp_path, "--checkpoint",
          tmp_path / "none.safetensors"), "no model checkpoint"),
        (("--library", tmp_path / "empty", "serve", "--checkpoint", tiny_checkpoint), "is empty"),
    ]:
        result = run(*args)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert says in result.stderr


def test_commands_have_help_with_an_example():
    for name in ("demo", "serve"):
        result = run(name, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout
    assert "127.0.0.1" in run("serve", "--help").stdout


# -- the bundled demo library ---------------------------------------------------------------------
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/photos is not in this checkout")


@needs_examples
def test_bundled_photos_are_captioned_credited_and_licensed():
    images = sorted(p.name for p in (EXAMPLES / "images").iterdir())
    assert len(images) == 51 and all(re.fullmatch(r"0000\d{8}\.jpg", name) for name in images)  # COCO, not Flickr8k
    captions = json.loads((EXAMPLES / "captions.json").read_text())
    credits = json.loads((EXAMPLES / "CREDITS.json").read_text())
    assert {c["file_name"] for c in captions} == set(images)
    assert {c["file_name"] for c in credits} == set(images)
    assert {c["license_url"] for c in credits} <= {"http://creativecommons.org/licenses/by/2.0/",
                                                   "http://creativecommons.org/licenses/by-sa/2.0/"}
    notice = (EXAMPLES / "LICENSE.md").read_text()
    assert "CC BY 2.0" in notice and "CC BY-SA 2.0" in notice and "CC BY 4.0" in notice and "CREDITS.json" in notice


@needs_examples
def test_demo_uses_the_bundled_photos_by_default():
    assert demo.BUNDLED_PHOTOS == EXAMPLES / "images"


def test_a_running_daemon_keeps_the_library_indexed_instead(tmp_path, photos, tiny_checkpoint):
    args = ("--library", tmp_path / "lib", "demo", "--photos", photos, "--checkpoint", tiny_checkpoint,
            "--results-dir", tmp_path / "results")
    assert run(*args, input="").exit_code == 0
    with LibraryLock(tmp_path / "lib", "watch"):
        result = run(*args, input="a red circle\n")
    assert result.exit_code == 0, result.output
    assert "not indexing: photosearch watch is already running" in result.stderr
    assert LINE.match(result.stdout.splitlines()[0])


def test_grid_keeps_thumbnails_aspect_ratio(tmp_path):
    from PIL import Image

    wide = Image.new("RGB", (256, 128), "red")  # 2:1, must not be squashed into the square box
    cells = [({"rank": 1, "score": 0.5, "name": "x" * 200 + ".jpg"}, wide), ({"rank": 2, "score": 0.25, "name": "b.jpg"}, None)]
    grid = Image.open(demo.save_grid("a red thing " * 20, cells, tmp_path / "g.png")).convert("RGB")
    assert grid.width == 2 * (demo.CELL + 2 * demo.PAD) + demo.PAD  # long names and titles don't widen it
    ys, xs = np.nonzero((np.asarray(grid) == (255, 0, 0)).all(axis=2))
    assert (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) == (demo.CELL, demo.CELL // 2)
