"""`photosearch watch` as a real subprocess: it follows every change on disk, answers queries,
refuses a second copy, stops cleanly on SIGTERM and survives a SIGKILL in the middle of a scan."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from photosearch.indexer import ipc
from photosearch.storage import Library, StorageError
from tests.daemon.conftest import (
    cli_json, draw, draw_noise, eventually, photosearch_command, run_cli, subprocess_env,
)

pytestmark = pytest.mark.slow


def indexed_paths(lib) -> set[str]:
    """Every path `query` can return (k large enough for the whole library)."""
    answer = cli_json("--library", lib, "query", "a red circle", "-k", "1000")
    return {hit["path"] for hit in answer["results"]}


def score_of(lib, path) -> float | None:
    answer = cli_json("--library", lib, "query", "a red circle", "-k", "1000")
    return next((hit["score"] for hit in answer["results"] if hit["path"] == str(path)), None)


def counts(lib) -> dict:
    return cli_json("--library", lib, "status")["photos"]


def test_daemon_follows_every_change(tmp_path, daemon_factory):
    root, lib = tmp_path / "photos", tmp_path / "lib"
    red, blue = draw(root / "red.png", "red", "circle"), draw(root / "blue.png", "blue", "square")
    daemon = daemon_factory([root]).start()
    daemon.wait_ready()
    daemon.wait_scanned()
    assert indexed_paths(lib) == {str(red), str(blue)}
    assert oct((lib / "daemon.sock").stat().st_mode & 0o777) == "0o600"

    green = draw(root / "green.png", "green", "triangle")  # create
    eventually(lambda: str(green) in indexed_paths(lib), what="a new photo to be indexed")

    before = score_of(lib, red)  # edit: new content at the same path
    draw(red, "yellow", "square", variant=1)
    eventually(lambda: (s := score_of(lib, red)) is not None and abs(s - before) > 1e-6, what="an edit")

    renamed = root / "renamed.png"  # rename
    os.rename(red, renamed)
    eventually(lambda: indexed_paths(lib) == {str(renamed), str(blue), str(green)}, what="a rename")

    moved = root / "sub" / "moved.png"  # move into a new subfolder
    moved.parent.mkdir()
    os.rename(renamed, moved)
    eventually(lambda: indexed_paths(lib) == {str(moved), str(blue), str(green)}, what="a move")

    os.remove(blue)  # delete
    # queries hide a vanished file at once (indexer.live_hits); the daemon must also drop its row
    eventually(lambda: indexed_paths(lib) == {str(moved), str(green)} and counts(lib)["total"] == 2,
               what="a deletion")
    photos = counts(lib)
    assert (photos["total"], photos["indexed"], photos["pending"], photos["failed"]) == (2, 2, 0, 0)

    unplugged = tmp_path / "unplugged"  # the drive goes away: photos kept as missing
    os.rename(root, unplugged)
    eventually(lambda: counts(lib)["missing"] == 2, what="the vanished root's photos to be missing")
    status = cli_json("--library", lib, "status")
    assert status["roots"] == [{"path": str(root), "present": False}]
    os.rename(unplugged, root)  # ...and comes back, without re-embedding
    eventually(lambda: counts(lib)["indexed"] == 2, what="the root's photos to come back")
    assert indexed_paths(lib) == {str(moved), str(green)}

    assert daemon.signal(signal.SIGTERM) == 0
    assert "Traceback" not in daemon.log()


def test_one_daemon_per_library_same_answers_and_clean_sigterm(tmp_path, daemon_factory, tiny_checkpoint):
    root, lib = tmp_path / "photos", tmp_path / "lib"
    for i, (colour, shape) in enumerate([("red", "circle"), ("blue", "square"), ("green", "triangle")]):
        draw(root / f"{colour}.png", colour, shape, variant=i)
    assert cli_json("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)["added"] == 3
    daemon = daemon_factory([]).start()  # no PATH: the folders the library remembers
    daemon.wait_ready()
    daemon.wait_scanned()
    assert "3 unchanged" in daemon.log()

    second = subprocess.run(
        [*photosearch_command(), "--library", str(lib), "watch", str(root), "--checkpoint", str(tiny_checkpoint)],
        capture_output=True, text=True, timeout=60, env=subprocess_env(),
    )
    assert second.returncode != 0
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
    assert f"pid {daemon.proc.pid}" in second.stderr

    via_daemon = cli_json("--library", lib, "query", "a blue square", "-k", "3")
    assert via_daemon["source"] == "daemon"
    status = cli_json("--library", lib, "status")
    assert status["daemon"] == {"running": True, "pid": daemon.proc.pid, "scanning": None,
                                "unwatched": [], "unwatched_count": 0, "unwatched_poll_s": 30.0,
                                "waiting": None}

    assert daemon.signal(signal.SIGTERM) == 0
    assert not (lib / "daemon.sock").exists()
    with pytest.raises(ipc.DaemonUnavailable):
        ipc.request(lib, {"op": "ping"})
    with Library.open(lib) as library:  # the saved FAISS index agrees with SQLite
        stats = library.stats()
        assert stats["index_repair"] is None and stats["index_entries"] == stats["vectors"] == 3

    in_process = cli_json("--library", lib, "query", "a blue square", "-k", "3", "--checkpoint", tiny_checkpoint)
    assert in_process["source"] == "in-process"
    assert [h["path"] for h in in_process["results"]] == [h["path"] for h in via_daemon["results"]]
    assert [h["score"] for h in in_process["results"]] == pytest.approx([h["score"] for h in via_daemon["results"]], abs=1e-5)
    assert cli_json("--library", lib, "status")["daemon"] == {"running": False, "pid": None, "scanning": None}


def indexed_count(lib) -> int | None:
    try:
        with Library.open(lib, read_only=True) as library:
            return library.stats()["by_status"]["indexed"]
    except StorageError:  # not created yet
        return None


def test_sigterm_then_sigkill_mid_scan_then_restart_leaves_no_duplicates_or_gaps(tmp_path, daemon_factory):
    root, lib, total = tmp_path / "many", tmp_path / "lib", 400
    root.mkdir()
    for i in range(total):
        draw_noise(root / f"img{i:04d}.png", seed=i)

    def under_way(daemon, above: int):
        def check():
            daemon.check_alive()
            return (indexed_count(lib) or 0) > above
        eventually(check, 60, "the scan to be under way", interval=0.01)

    first = daemon_factory([root]).start()  # SIGTERM mid-scan: the batch in hand is kept
    under_way(first, 0)
    assert first.signal(signal.SIGTERM) == 0
    assert "scan stopped" in first.log() and "index saved" in first.log()
    with Library.open(lib) as library:
        stats = library.stats()
        assert stats["index_repair"] is None and stats["index_entries"] == stats["vectors"]
    after_term = indexed_count(lib)
    assert 0 < after_term < total, "SIGTERM should land in the middle of the scan"

    second = daemon_factory([root]).start()  # SIGKILL mid-scan: nothing to clean up
    under_way(second, after_term)
    second.proc.send_signal(signal.SIGKILL)
    second.proc.wait(10)
    assert indexed_count(lib) < total, "SIGKILL should land in the middle of the scan"

    third = daemon_factory([root]).start()
    third.wait_ready()
    third.wait_scanned()
    assert third.signal(signal.SIGTERM) == 0

    with Library.open(lib) as library:
        photos = library.photos_under(root)
        paths = [p.path for p in photos]
        assert len(paths) == len(set(paths)) == total
        assert set(paths) == {str(p) for p in root.iterdir()}
        assert {p.status for p in photos} == {"indexed"}
        stats = library.stats()
        assert stats["index_repair"] is None  # the index file saved on SIGTERM agrees with SQLite
        assert stats["vectors"] == stats["index_entries"] == total
        ids, _ = library.ids_and_vectors()
        assert sorted(ids.tolist()) == sorted(p.id for p in photos)
    assert run_cli("--library", lib, "status").exit_code == 0
