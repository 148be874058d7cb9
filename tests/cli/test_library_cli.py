"""index, query, similar, status and reindex through the CLI (in-process, a real tiny model),
and the one-line errors users can cause."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from photosearch.cli.library_cmds import COMMANDS
from photosearch.indexer import ipc, service
from photosearch.indexer.lock import LibraryLock
from tests.conftest import COLOURS, SHAPES
from tests.daemon.conftest import cli_json, draw, run_cli, subprocess_env

LINE = re.compile(r"^(\d+)\. (/.+) \(score: (-?\d+\.\d{3})(?:, taken \d{4}-\d{2}-\d{2})?\)$")


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_checkpoint):
    """12 shapes in a folder, 2 more in a subfolder, and one broken file; indexed once."""
    base = tmp_path_factory.mktemp("cli")
    root, lib = base / "photos", base / "lib"
    for i, colour in enumerate(COLOURS):
        for shape in SHAPES:
            draw(root / f"{colour}_{shape}.png", colour, shape, variant=i)
    draw(root / "sub" / "a.png", "red", "square", 4)
    draw(root / "sub" / "b.png", "blue", "circle", 5)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    report = cli_json("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)
    return {"root": root, "lib": lib, "ckpt": tiny_checkpoint, "report": report}


def ps(library, *args):
    return run_cli("--library", library["lib"], *args)


def assert_one_line_error(result, *, code: int = 1, says: str = ""):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if code == 1:  # usage errors (2) come with click's usage lines
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert says in result.stderr, result.stderr


def test_index_reports_what_it_did(library):
    report = library["report"]
    assert set(report) == {"roots", "added", "updated", "moved", "removed", "unchanged", "failed", "missing",
                           "failures", "interrupted", "seconds"}
    assert (report["added"], report["failed"], report["roots"]) == (14, 1, [str(library["root"])])
    assert report["failures"][0]["path"].endswith("broken.jpg") and report["failures"][0]["error"]
    again = cli_json("--library", library["lib"], "index", library["root"], "--checkpoint", library["ckpt"])
    assert again["unchanged"] == 14 and again["added"] == 0


def test_query_prints_one_ranked_line_per_photo(library):
    result = ps(library, "query", "a red circle", "-k", "5", "--checkpoint", library["ckpt"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    matches = [LINE.match(line) for line in lines]
    assert len(lines) == 5 and all(matches), lines
    assert [int(m.group(1)) for m in matches] == [1, 2, 3, 4, 5]
    scores = [float(m.group(3)) for m in matches]
    assert scores == sorted(scores, reverse=True)


def test_query_json_paths_only_and_in_folder(library):
    answer = cli_json("--library", library["lib"], "query", "blue square", "-k", "4", "--checkpoint", library["ckpt"])
    assert set(answer) == {"query", "terms", "k", "under", "from", "to", "tag", "source", "model_fingerprint",
                           "calibrated", "no_good_match", "results"}
    assert answer["source"] == "in-process" and answer["query"] == "blue square"
    assert [set(hit) for hit in answer["results"]] == [{"rank", "path", "score", "raw_score", "taken_at", "tags", "copies"}] * 4
    paths = ps(library, "query", "blue", "square", "-k", "4", "--paths-only", "--checkpoint", library["ckpt"])
    assert paths.stdout.splitlines() == [hit["path"] for hit in answer["results"]]
    inside = cli_json("--library", library["lib"], "query", "blue square", "--in", library["root"] / "sub",
                      "--checkpoint", library["ckpt"])
    assert sorted(h["path"] for h in inside["results"]) == [str(library["root"] / "sub" / n) for n in ("a.png", "b.png")]


def test_similar_leaves_the_photo_out_and_refuses_unknown_ones(library):
    photo = library["root"] / "red_circle.png"
    answer = cli_json("--library", library["lib"], "similar", photo, "-k", "3")
    assert set(answer) == {"photo", "k", "under", "from", "to", "tag", "source", "model_fingerprint",
                           "calibrated", "no_good_match", "results"}
    assert len(answer["results"]) == 3 and str(photo) not in [h["path"] for h in answer["results"]]
    assert_one_line_error(ps(library, "similar", "--checkpoint", library["ckpt"], library["root"] / "nope.png"), says="no such file")
    assert_one_line_error(ps(library, "similar", "--checkpoint", library["ckpt"], library["root"] / "broken.jpg"), says="cannot be read as a photo")


def test_status_counts_failures_model_and_daemon(library):
    status = cli_json("--library", library["lib"], "status", "--checkpoint", library["ckpt"])
    assert set(status) == {"library", "photos", "failed", "roots", "model", "index", "daemon", "writer", "notice"}
    assert status["notice"] is None
    assert status["photos"] == {"total": 15, "indexed": 14, "pending": 0, "failed": 1, "missing": 0}
    assert status["failed"][0]["path"].endswith("broken.jpg") and status["failed"][0]["error"]
    assert status["model"]["fingerprint"] == status["model"]["library_fingerprint"]
    assert status["model"]["mismatch"] is False and status["model"]["checkpoint"] == str(library["ckpt"])
    assert status["daemon"] == {"running": False, "pid": None, "scanning": None}
    assert status["library"]["path"] == str(library["lib"]) and status["library"]["bytes"] > 0
    assert status["index"]["vectors"] == 14
    assert status["roots"] == [{"path": str(library["root"]), "present": True}]
    text = ps(library, "status").stdout
    assert "14 indexed" in text and "broken.jpg" in text and "daemon:   not running" in text


def test_user_errors_are_one_line_without_traceback(library, tmp_path):
    empty = tmp_path / "empty"
    for args in (["query", "x"], ["status"], ["similar", "a.jpg"]):
        assert_one_line_error(run_cli("--library", empty, *args), says="photosearch index PATH")
    missing = tmp_path / "missing.safetensors"
    assert_one_line_error(ps(library, "query", "x", "--checkpoint", missing), says="--checkpoint")
    assert_one_line_error(ps(library, "index", library["root"], "--checkpoint", missing), says="photosearch train")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a checkpoint at all")
    assert_one_line_error(ps(library, "query", "x", "--checkpoint", corrupt), says="not a photosearch checkpoint")
    assert_one_line_error(ps(library, "query", "  "), code=2, says="query is empty")
    assert_one_line_error(ps(library, "query"), code=2, says="query is empty")
    assert_one_line_error(ps(library, "index", tmp_path / "no-such-folder"), code=2, says="does not exist")


def test_writers_refuse_while_another_holds_the_library(library):
    with LibraryLock(library["lib"], "watch"):
        result = ps(library, "index", library["root"], "--checkpoint", library["ckpt"])
        assert_one_line_error(result, says="photosearch watch is already running")
        assert "(pid " in result.stderr
        assert_one_line_error(ps(library, "reindex", "--checkpoint", library["ckpt"]), says="stop it first")


def test_model_change_is_reported_and_reindex_re_embeds(tmp_path, tiny_checkpoint, other_checkpoint):
    root, lib = tmp_path / "photos", tmp_path / "lib"
    for colour in ("red", "green", "blue"):
        draw(root / f"{colour}.png", colour, "circle")
    cli_json("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)

    refused = run_cli("--library", lib, "query", "red circle", "--checkpoint", other_checkpoint)
    assert_one_line_error(refused, says="run `photosearch reindex`")
    assert "--allow-mismatch" in refused.stderr
    result = run_cli("--library", lib, "query", "red circle", "--checkpoint", other_checkpoint, "--allow-mismatch")
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 3
    assert len(result.stderr.strip().splitlines()) == 1 and "photosearch reindex" in result.stderr
    assert_one_line_error(run_cli("--library", lib, "index", root, "--checkpoint", other_checkpoint),
                          says="photosearch reindex")

    report = cli_json("--library", lib, "reindex", "--checkpoint", other_checkpoint)
    assert report["updated"] == 3 and report["failed"] == 0
    status = cli_json("--library", lib, "status", "--checkpoint", other_checkpoint)
    assert status["model"]["mismatch"] is False and status["photos"]["indexed"] == 3
    assert cli_json("--library", lib, "status", "--checkpoint", tiny_checkpoint)["model"]["mismatch"] is True
    again = run_cli("--library", lib, "query", "red circle", "--checkpoint", other_checkpoint)
    assert again.exit_code == 0 and again.stderr == ""


def test_query_answered_by_a_daemon_never_imports_torch(tmp_path):
    """Cold start: the client side of `photosearch query` stays light."""
    canned = {"query": "x", "k": 1, "under": None, "source": "daemon", "model_fingerprint": "f",
              "results": [{"rank": 1, "path": "/p/a.jpg", "score": 0.5}]}
    code = ("import sys; from photosearch.cli.main import cli\n"
            f"try: cli(['--library', {str(tmp_path)!r}, 'query', 'white chair'])\n"
            "except SystemExit: pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'torchvision', 'timm') if m in sys.modules]\n"
            "print('heavy:', heavy)")
    with ipc.SocketServer(tmp_path, lambda request: canned, log=lambda m: None):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env=subprocess_env())
    assert out.stdout.splitlines() == ["1. /p/a.jpg (score: 0.500)", "heavy: []"], out.stderr


def test_every_library_command_has_help_with_an_example():
    for command in COMMANDS:
        result = run_cli(command.name, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout and f"photosearch {command.name}" in result.stdout


def test_light_constants_match_their_sources():
    """service.py restates three constants to stay torch-free; they must not drift."""
    from photosearch.indexer.scanner import MODEL_META_KEY
    from photosearch.miniclip.checkpoint import default_checkpoint_path
    from photosearch.storage.library import DB_NAME

    assert (service.MODEL_META_KEY, service.DB_NAME) == (MODEL_META_KEY, DB_NAME)
    assert service.DEFAULT_CHECKPOINT == default_checkpoint_path()


@pytest.mark.parametrize("damage", ["missing", "stale", "corrupt"])
def test_a_checkpoint_without_a_usable_export_is_one_line_naming_the_command(library, tmp_path, damage):
    """index, query, reindex and watch on a checkpoint whose ONNX files are missing, stale or
    corrupt: one line that says to run `photosearch export --checkpoint PATH`, exit 1, nothing lost."""
    import shutil

    from photosearch.miniclip.export_manifest import ExportPaths

    checkpoint = tmp_path / "model.safetensors"
    shutil.copy(library["ckpt"], checkpoint)
    source, copy = ExportPaths.of(library["ckpt"]), ExportPaths.of(checkpoint)
    for role in ("image", "text", "manifest"):
        shutil.copy(getattr(source, role), getattr(copy, role))
    if damage == "missing":
        copy.image.unlink()
        copy.manifest.unlink()
    elif damage == "stale":
        data = bytearray(checkpoint.read_bytes())
        data[-8] ^= 0x01  # another weight value: the file's fingerprint no longer matches
        checkpoint.write_bytes(bytes(data))
        from photosearch.miniclip.checkpoint import load_checkpoint, save_checkpoint

        save_checkpoint(load_checkpoint(checkpoint), checkpoint)  # a retrained checkpoint, same name
    else:
        data = bytearray(copy.image.read_bytes())
        data[len(data) // 2] ^= 0xFF
        copy.image.write_bytes(bytes(data))
    before = cli_json("--library", library["lib"], "status")["photos"]
    says = f"photosearch export --checkpoint {checkpoint}"
    for args in (["index", library["root"]], ["query", "a red circle"], ["reindex"],
                 ["watch", library["root"]]):
        if damage != "stale" and args[0] == "query" and damage == "corrupt":
            continue  # a query runs the text tower only: the corrupt image tower is never read
        assert_one_line_error(ps(library, *args, "--checkpoint", checkpoint), says=says)
    assert cli_json("--library", library["lib"], "status")["photos"] == before


def test_a_running_daemon_does_not_hide_an_unusable_checkpoint(library, tmp_path):
    """`query --checkpoint X` where X has no usable export fails the same way with a daemon
    answering as without one, instead of silently answering with the daemon's model."""
    from photosearch.miniclip.export_manifest import ExportPaths

    checkpoint = tmp_path / "bare.safetensors"
    checkpoint.write_bytes(library["ckpt"].read_bytes())  # no export beside it
    canned = {"query": "x", "k": 1, "under": None, "source": "daemon", "model_fingerprint": "daemon-model",
              "results": [{"rank": 1, "path": "/p/a.jpg", "score": 0.5}]}
    with ipc.SocketServer(library["lib"], lambda request: canned, log=lambda m: None):
        result = ps(library, "query", "a red circle", "--checkpoint", checkpoint)
    assert_one_line_error(result, says=f"photosearch export --checkpoint {checkpoint}")
    assert not ExportPaths.of(checkpoint).manifest.exists()


def test_status_names_what_is_wrong_with_the_model(library, tmp_path):
    checkpoint = tmp_path / "bare.safetensors"
    checkpoint.write_bytes(library["ckpt"].read_bytes())
    report = cli_json("--library", library["lib"], "status", "--checkpoint", checkpoint)
    assert report["model"]["fingerprint"] is None and "photosearch export" in report["model"]["problem"]
    assert f"photosearch export --checkpoint {checkpoint}" in ps(library, "status", "--checkpoint", checkpoint).stdout


def test_an_interrupted_reindex_says_how_to_finish_and_the_next_one_resumes(tmp_path, tiny_checkpoint):
    from tests.daemon.conftest import draw_noise

    root, lib = tmp_path / "photos", tmp_path / "lib"
    root.mkdir()
    total = 40  # more than one model batch (32)
    for i in range(total):
        draw_noise(root / f"{i}.png", seed=i)
    cli_json("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)

    def stop_midway(done, seen):
        if 0 < done < seen:
            raise KeyboardInterrupt  # Ctrl-C while photos are being embedded again

    with pytest.raises(KeyboardInterrupt):
        service.reindex(str(lib), str(tiny_checkpoint), progress=stop_midway)
    status = cli_json("--library", lib, "status", "--checkpoint", tiny_checkpoint)
    assert status["photos"]["pending"] > 0 and "run `photosearch reindex` to finish it" in status["notice"]
    left = status["photos"]["pending"]
    report = service.reindex(str(lib), str(tiny_checkpoint))  # resumes: nothing dropped again
    assert (report["updated"], report["unchanged"]) == (left, total - left)  # only what was left
    status = cli_json("--library", lib, "status", "--checkpoint", tiny_checkpoint)
    assert status["photos"]["indexed"] == total and status["notice"] is None
