"""Issue 12 parts 2 and 3 through the CLI and the web page's backend (a real tiny model):
a root indexed under two names is one root, and photos deleted since the last scan are never
results (no daemon running; the daemon's searcher too)."""

from __future__ import annotations

import os

import pytest

from photosearch.indexer.backend import LibraryBackend
from photosearch.indexer.searcher import Searcher
from photosearch.storage import Library
from tests.daemon.conftest import cli_json, draw, run_cli


@pytest.fixture
def indexed(tmp_path, tiny_checkpoint):
    """Six photos indexed (no daemon), and the dog photo then deleted."""
    root, lib = tmp_path / "photos", tmp_path / "lib"
    for i, (colour, shape) in enumerate([("red", "circle"), ("red", "square"), ("blue", "circle"),
                                         ("green", "square"), ("blue", "square"), ("green", "circle")]):
        draw(root / f"{colour}_{shape}.png", colour, shape, variant=i)
    cli_json("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)
    top = cli_json("--library", lib, "query", "a red circle", "-k", "1", "--checkpoint", tiny_checkpoint)
    gone = top["results"][0]["path"]
    os.remove(gone)
    kept = next(str(p) for p in sorted(root.iterdir()) if str(p) != gone)
    return {"root": root, "lib": lib, "ckpt": tiny_checkpoint, "gone": gone, "kept": kept}


def test_query_leaves_out_a_deleted_photo_and_still_fills_k(indexed):
    answer = cli_json("--library", indexed["lib"], "query", "a red circle", "-k", "3",
                      "--checkpoint", indexed["ckpt"])
    paths = [hit["path"] for hit in answer["results"]]
    assert indexed["gone"] not in paths and len(paths) == 3
    assert [hit["rank"] for hit in answer["results"]] == [1, 2, 3]
    everything = cli_json("--library", indexed["lib"], "query", "a red circle", "-k", "10",
                          "--checkpoint", indexed["ckpt"])
    assert len(everything["results"]) == 5


def test_paths_only_lists_only_files_that_exist(indexed):
    result = run_cli("--library", indexed["lib"], "query", "a red circle", "--paths-only",
                     "--checkpoint", indexed["ckpt"])
    assert result.exit_code == 0, result.output
    paths = result.stdout.splitlines()
    assert paths and all(os.path.isfile(p) for p in paths)


def test_similar_leaves_out_a_deleted_photo(indexed):
    photo = indexed["kept"]
    answer = cli_json("--library", indexed["lib"], "similar", photo, "-k", "10")
    paths = [hit["path"] for hit in answer["results"]]
    assert indexed["gone"] not in paths and str(photo) not in paths and len(paths) == 4


def test_the_web_backend_leaves_out_a_deleted_photo(indexed):
    backend = LibraryBackend(str(indexed["lib"]), str(indexed["ckpt"]))
    try:
        answer = backend.with_ids(backend.answer({"op": "query", "text": "a red circle", "k": 10}))
        assert indexed["gone"] not in [hit["path"] for hit in answer["results"]]
        assert len(answer["results"]) == 5
    finally:
        backend.close()


def test_the_daemons_searcher_skips_a_file_gone_before_the_watcher_noticed(indexed):
    from photosearch.indexer.resources import load_query_model

    model = load_query_model(str(indexed["ckpt"]))
    with Library.open(indexed["lib"]) as lib:  # writable, as the daemon holds it
        searcher = Searcher(lib, indexed["lib"], model=model, daemon_pid=os.getpid())
        answer = searcher.answer({"op": "query", "text": "a red circle", "k": 10})
        assert indexed["gone"] not in [hit["path"] for hit in answer["results"]]
        assert lib.get_by_path(indexed["gone"]) is not None  # left for the watcher to settle


def test_the_next_index_removes_the_deleted_photo(indexed):
    report = cli_json("--library", indexed["lib"], "index", indexed["root"], "--checkpoint", indexed["ckpt"])
    assert report["removed"] == 1


def test_a_root_indexed_again_through_a_symlink_is_one_root(indexed, tmp_path):
    link = tmp_path / "Pictures"
    link.symlink_to(indexed["root"])
    report = cli_json("--library", indexed["lib"], "index", link, "--checkpoint", indexed["ckpt"])
    assert report["roots"] == [str(indexed["root"])] and report["added"] == 0
    status = cli_json("--library", indexed["lib"], "status", "--checkpoint", indexed["ckpt"])
    assert [r["path"] for r in status["roots"]] == [str(indexed["root"])]
    assert status["photos"]["total"] == 5
    photo = indexed["kept"]
    for asked in (photo, link / os.path.basename(photo)):
        answer = cli_json("--library", indexed["lib"], "similar", asked, "-k", "10")
        assert str(photo) not in [hit["path"] for hit in answer["results"]]


def test_under_a_symlinked_folder_means_the_real_one(indexed, tmp_path):
    link = tmp_path / "Pictures"
    link.symlink_to(indexed["root"])
    answer = cli_json("--library", indexed["lib"], "query", "a red circle", "-k", "10",
                      "--in", link, "--checkpoint", indexed["ckpt"])
    assert len(answer["results"]) == 5
