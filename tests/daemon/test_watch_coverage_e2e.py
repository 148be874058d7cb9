"""The daemon sees what inotify does not (issue 12, part 1): photos added under a symlinked
folder, and folders past the inotify watch limit, which `status` lists and the daemon polls."""

from __future__ import annotations

import errno
import json
import os
import threading

import pytest

from photosearch.indexer import daemon as daemon_module
from tests.daemon.conftest import cli_json, draw, draw_noise, eventually, run_cli

pytestmark = pytest.mark.slow


def indexed_paths(lib) -> set[str]:
    answer = cli_json("--library", lib, "query", "a red circle", "-k", "1000")
    return {hit["path"] for hit in answer["results"]}


def test_daemon_indexes_a_photo_added_under_a_symlinked_folder(tmp_path, daemon_factory):
    root, elsewhere, lib = tmp_path / "collection", tmp_path / "elsewhere" / "2022", tmp_path / "lib"
    elsewhere.mkdir(parents=True)
    root.mkdir()
    draw(elsewhere / "old.png", "red", "circle")
    (root / "2022").symlink_to("../elsewhere/2022")
    daemon = daemon_factory([root]).start()
    daemon.wait_ready()
    daemon.wait_scanned()
    assert indexed_paths(lib) == {str(root / "2022" / "old.png")}
    draw(elsewhere / "new.png", "blue", "square")
    eventually(lambda: str(root / "2022" / "new.png") in indexed_paths(lib),
               what="a photo added under a symlinked folder to be indexed")
    daemon.check_alive()


def test_daemon_reports_and_polls_folders_past_the_watch_limit(tmp_path, tiny_checkpoint,
                                                               monkeypatch):
    inotify_c = pytest.importorskip("watchdog.observers.inotify_c")
    watched: set = set()
    real = inotify_c.InotifyFD._get_or_create_watch

    def limited(self, path, mask):  # fs.inotify.max_user_watches = 4, simulated
        if path not in watched and len(watched) >= 4:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        watched.add(path)
        return real(self, path, mask)

    monkeypatch.setattr(inotify_c.InotifyFD, "_get_or_create_watch", limited)
    root, lib = tmp_path / "photos", tmp_path / "lib"
    for i in range(8):
        (root / f"f{i}").mkdir(parents=True)
        draw_noise(root / f"f{i}" / "a.png", seed=i)
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=daemon_module.watch, args=([str(root)], str(lib), str(tiny_checkpoint)),
                              kwargs=dict(log=lines.append, settle_s=0.2, poll_s=0.5, stop=stop,
                                          poll_unwatched_s=0.3))
    thread.start()
    try:
        def unwatched():
            assert thread.is_alive(), "\n".join(lines)
            result = run_cli("--library", lib, "status", "--json")  # fails until the library exists
            return result.exit_code == 0 and json.loads(result.stdout)["daemon"].get("unwatched")

        folders = eventually(unwatched, timeout=60, what="status to list the unwatched folders")
        status = cli_json("--library", lib, "status")["daemon"]
        assert status["unwatched_count"] == len(folders) == 5
        assert set(folders) <= {str(root / f"f{i}") for i in range(8)}
        plain = run_cli("--library", lib, "status").output
        assert "5 folder(s) past the inotify watch limit" in plain and f"unwatched: {folders[0]}" in plain

        draw_noise(tmp_path / "incoming.png", seed=99)
        os.replace(tmp_path / "incoming.png", os.path.join(folders[-1], "new.png"))
        eventually(lambda: os.path.join(folders[-1], "new.png") in indexed_paths(lib),
                   what="a photo in an unwatched folder to be indexed by the poll")
    finally:
        stop.set()
        thread.join(30)
    said = [line for line in lines if "inotify watch limit" in line]
    assert len(said) == 1 and "fs.inotify.max_user_watches" in said[0], lines
