"""While `photosearch watch` starts (it holds the library, its socket does not answer yet):
`status` says "starting" (exit 0); `query` answers in-process when the library holds photos,
else waits for the daemon (bounded) — never "the library is empty, run photosearch watch"."""

from __future__ import annotations

import threading
import time

from photosearch.indexer import ipc, service
from photosearch.indexer.lock import LibraryLock
from tests.daemon.conftest import cli_json, draw, run_cli


def test_status_says_starting_before_the_library_exists(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    with LibraryLock(lib, "watch"):
        result = run_cli("--library", lib, "status")
        assert result.exit_code == 0, result.output
        assert "daemon:   starting (pid" in result.stdout
        report = cli_json("--library", lib, "status")
        assert report["daemon"]["starting"] is True and report["daemon"]["running"] is True


def test_status_and_query_on_an_indexed_library_while_the_daemon_starts(tmp_path, tiny_checkpoint):
    root, lib = tmp_path / "photos", tmp_path / "lib"
    draw(root / "a.png", "red", "circle")
    cli_json("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)
    with LibraryLock(lib, "watch"):
        report = cli_json("--library", lib, "status", "--checkpoint", tiny_checkpoint)
        assert report["daemon"]["starting"] is True and report["photos"]["indexed"] == 1
        answer = cli_json("--library", lib, "query", "red circle", "--checkpoint", tiny_checkpoint)
        assert answer["source"] == "in-process" and len(answer["results"]) == 1


def test_query_waits_for_a_starting_daemon_of_an_empty_library(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    canned = {"query": "x", "k": 1, "under": None, "source": "daemon", "model_fingerprint": "f",
              "results": [{"rank": 1, "path": "/p/a.jpg", "score": 0.5}]}
    with LibraryLock(lib, "watch"):
        def come_up():
            time.sleep(1.0)
            server = ipc.SocketServer(lib, lambda request: canned, log=lambda m: None)
            server.__enter__()
            done.wait()
            server.__exit__(None, None, None)

        done = threading.Event()
        thread = threading.Thread(target=come_up)
        thread.start()
        try:
            started = time.monotonic()
            result = run_cli("--library", lib, "query", "white chair")
            assert result.exit_code == 0, result.output
            assert result.stdout.startswith("1. /p/a.jpg") and time.monotonic() - started >= 0.9
            assert "empty" not in result.stderr and "photosearch watch" not in result.stderr
        finally:
            done.set()
            thread.join()


def test_a_daemon_that_never_answers_is_a_bounded_wait(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    monkeypatch.setattr(service, "DAEMON_START_WAIT_S", 0.5)
    with LibraryLock(lib, "watch"):
        result = run_cli("--library", lib, "query", "white chair")
    assert result.exit_code == 1 and "has not answered" in result.stderr, result.output
    assert "photosearch watch" not in result.stderr
