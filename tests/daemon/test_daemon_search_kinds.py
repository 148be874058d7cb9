"""The daemon answers the new kinds of search as in-process does: date filters, combined terms,
a photo outside the library, and the gallery's browse."""

from __future__ import annotations

import shutil

import pytest

from photosearch.indexer import ipc
from tests.daemon.conftest import cli_json, draw


def test_daemon_and_in_process_answer_alike(tmp_path, daemon_factory, tiny_checkpoint):
    root, lib = tmp_path / "photos", tmp_path / "lib"
    for i, (colour, shape) in enumerate([("red", "circle"), ("blue", "square"), ("green", "triangle")]):
        draw(root / f"{colour}.png", colour, shape, variant=i)
    outside = tmp_path / "outside.png"
    shutil.copy(root / "blue.png", outside)
    asks = [("query", "red", "--and", "circle:0.5", "--not", "square", "-k", "3"),
            ("query", "red", "--from", "2000", "-k", "3"),
            ("query", "red", "--like", outside, "-k", "3"),
            ("similar", outside, "-k", "2")]
    cli_json("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)
    here = [cli_json("--library", lib, *ask, "--checkpoint", tiny_checkpoint) for ask in asks]
    daemon = daemon_factory([]).start()
    daemon.wait_ready()
    daemon.wait_scanned()
    there = [cli_json("--library", lib, *ask) for ask in asks]
    for a, b in zip(here, there):
        assert (a["source"], b["source"]) == ("in-process", "daemon")
        assert [h["path"] for h in a["results"]] == [h["path"] for h in b["results"]]
        assert [h["raw_score"] for h in a["results"]] == pytest.approx([h["raw_score"] for h in b["results"]], abs=1e-3)
    page = ipc.request(lib, {"op": "browse", "offset": 0, "limit": 2})
    assert len(page["results"]) == 2 and page["more"] is True and page["total"] == 3
