"""The serving commands run without torch: index, watch, query, similar, status, reindex, serve
and `demo --batch` each run for real, in a fresh interpreter, on a library of a few photos drawn
in tmp_path, with the shipped default checkpoint (its ONNX export under checkpoints/); at the
end of each, torch, torchvision, timm, transformers (and matplotlib, now train-only) must not
be in `sys.modules`.

The check runs from `atexit` (click ends every command with sys.exit) and, for the long-running
`watch` and `serve`, also from their SIGTERM handlers. Each test first checks that the command
did its job, so that one failing early cannot pass by having loaded nothing.
"""

from __future__ import annotations

import ast
import json
import re
import selectors
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from photosearch.indexer import ipc
from tests.daemon.conftest import draw, eventually, subprocess_env

HEAVY = ("torch", "torchvision", "timm", "transformers", "matplotlib")
MARK = "HEAVY-MODULES"
LINE = re.compile(r"^(\d+)\. (/.+) \(score: (-?\d+\.\d{3})(?:, taken \d{4}-\d{2}-\d{2})?\)$")
PHOTOS = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "circle")]

# Reports the heavy modules loaded, on stderr, when the interpreter exits (click's sys.exit
# included) and whenever SIGTERM arrives (wrapping any handler the command installs), then runs
# the CLI with the arguments given after -c.
PROBE = f"""
import atexit, signal, sys

def report(*_):
    print({MARK!r}, sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr, flush=True)

atexit.register(report)
_install = signal.signal

def _reporting(handler):
    if not callable(handler):
        return handler
    def on_signal(signum, frame):
        report()
        return handler(signum, frame)
    return on_signal

def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)

def _signal(sig, handler):
    return _install(sig, _reporting(handler) if sig == signal.SIGTERM else handler)

signal.signal = _signal
signal.signal(signal.SIGTERM, _exit_on_term)
from photosearch.cli.main import cli
cli(sys.argv[1:], prog_name="photosearch")
"""


def command(*args) -> list[str]:
    return [sys.executable, "-c", PROBE, *[str(a) for a in args]]


def heavy_loaded(stderr: str) -> list[str]:
    """The last report's list; fails if the command never reported (it did not exit cleanly)."""
    reports = [line for line in stderr.splitlines() if line.startswith(MARK + " ")]
    assert reports, f"the command ended without reporting its modules:\n{stderr[-3000:]}"
    return ast.literal_eval(reports[-1][len(MARK) + 1:])


def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout, env=subprocess_env())
    assert result.returncode == 0, f"photosearch {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}"
    return result


def draw_photos(folder: Path) -> Path:
    for i, (colour, shape) in enumerate(PHOTOS):
        draw(folder / f"{colour}_{shape}.png", colour, shape, variant=i, size=48)
    return folder


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> dict:
    """A library of the drawn photos, indexed by `photosearch index` (itself checked below)."""
    base = tmp_path_factory.mktemp("serving")
    photos, library = draw_photos(base / "photos"), base / "library"
    result = run("--library", library, "index", photos, "--json")
    return {"photos": photos, "library": library, "index": result}


def test_index(indexed):
    result = indexed["index"]
    assert json.loads(result.stdout)["added"] == len(PHOTOS), result.stdout
    assert heavy_loaded(result.stderr) == []


def test_query(indexed):
    result = run("--library", indexed["library"], "query", "-k", "2", "a red circle")
    assert [LINE.match(line).group(1) for line in result.stdout.splitlines()] == ["1", "2"], result.stdout
    assert heavy_loaded(result.stderr) == []


def test_cold_query_reads_without_sqlalchemy(indexed):
    """A cold query reads the library through `storage.reader` (Python's sqlite3): SQLAlchemy's
    import alone is ~0.25 s, half of the query. Pillow and HEIF support are not needed either."""
    probe = PROBE.replace(repr(HEAVY), repr(("sqlalchemy", "PIL", "pi_heif")))
    result = subprocess.run([sys.executable, "-c", probe, "--library", str(indexed["library"]), "query",
                             "-k", "2", "a red circle"], capture_output=True, text=True, timeout=300,
                            env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert [LINE.match(line).group(1) for line in result.stdout.splitlines()] == ["1", "2"], result.stdout
    assert heavy_loaded(result.stderr) == []


def test_similar(indexed):
    photo = indexed["photos"] / "red_circle.png"
    result = run("--library", indexed["library"], "similar", photo, "-k", "2", "--json")
    paths = [hit["path"] for hit in json.loads(result.stdout)["results"]]
    assert len(paths) == 2 and str(photo) not in paths, paths
    assert heavy_loaded(result.stderr) == []


def test_status(indexed):
    result = run("--library", indexed["library"], "status", "--json")
    assert json.loads(result.stdout)["photos"]["indexed"] == len(PHOTOS), result.stdout
    assert heavy_loaded(result.stderr) == []


def test_reindex(indexed):
    result = run("--library", indexed["library"], "reindex", "--json")
    assert json.loads(result.stdout)["added"] + json.loads(result.stdout)["updated"] == len(PHOTOS), result.stdout
    assert heavy_loaded(result.stderr) == []


def test_demo_batch(tmp_path):
    photos, results = draw_photos(tmp_path / "photos"), tmp_path / "results"
    result = run("--library", tmp_path / "library", "demo", "--batch", "-k", "2", "--photos", photos,
                 "--results-dir", results)
    grids = [Path(line[len("grid: "):]) for line in result.stdout.splitlines() if line.startswith("grid: ")]
    assert len(grids) == 6 and all(grid.parent == results and grid.stat().st_size for grid in grids), result.stdout
    assert heavy_loaded(result.stderr) == []


def test_watch(tmp_path):
    """The daemon indexes the photos, answers `status` on its socket, and stops on SIGTERM."""
    photos, library, log = draw_photos(tmp_path / "photos"), tmp_path / "library", tmp_path / "watch.log"
    with open(log, "w") as err:
        daemon = subprocess.Popen(command("--library", library, "watch", photos, "--settle", "0.2", "--poll", "0.5"),
                                  stdout=subprocess.DEVNULL, stderr=err, env=subprocess_env())
    try:
        def indexed_all():
            assert daemon.poll() is None, f"the daemon exited with {daemon.returncode}:\n{log.read_text()[-3000:]}"
            try:
                answer = ipc.request(library, {"op": "status"}, timeout=5)
            except ipc.DaemonUnavailable:
                return None
            return answer["photos"]["indexed"] == len(PHOTOS) and answer["daemon"]["running"]

        eventually(indexed_all, timeout=240, what="the daemon to index the photos and answer status")
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
    assert code == 0, log.read_text()[-3000:]
    assert heavy_loaded(log.read_text()) == []


def test_serve(indexed, tmp_path):
    """The page's server starts on a free port, answers /api/status, and stops on SIGTERM."""
    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        server = subprocess.Popen(command("--library", indexed["library"], "serve", "--port", "0"),
                                  stdout=subprocess.PIPE, stderr=err, env=subprocess_env(), text=True)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(server.stdout, selectors.EVENT_READ)
            assert sel.select(240) and server.poll() is None, f"serve did not start:\n{log.read_text()[-3000:]}"
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        link = urllib.parse.urlsplit(url)  # http://127.0.0.1:PORT/?token=...: the API takes the token too
        with urllib.request.urlopen(f"http://{link.netloc}/api/status?{link.query}", timeout=60) as response:
            status = json.loads(response.read())
        assert status["photos"]["indexed"] == len(PHOTOS), status
        server.send_signal(signal.SIGTERM)
        code = server.wait(60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    assert code == 0, log.read_text()[-3000:]
    assert heavy_loaded(log.read_text()) == []
