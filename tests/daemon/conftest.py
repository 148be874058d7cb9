"""Fixtures for the daemon and library-CLI tests: a real tiny checkpoint, photos drawn on the
fly, and a `photosearch watch` subprocess to start, poll, signal and read the log of.

tests/cli/conftest.py imports these, so both folders share one checkpoint per session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from photosearch.cli.main import cli
from photosearch.indexer import ipc
from photosearch.miniclip.checkpoint import save_checkpoint
from photosearch.miniclip.config import PRESETS, with_overrides
from photosearch.miniclip.export import export_model
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.tokenizer import WordTokenizer
from tests.conftest import COLOURS, SHAPES, draw_shape

CAPTIONS = [f"a {colour} {shape}" for colour in COLOURS for shape in SHAPES]


def build_checkpoint(path: Path, seed: int) -> Path:
    """A real (untrained) tiny MiniCLIP with an LSTM text encoder, saved and exported the shipped way."""
    torch.manual_seed(seed)
    model = MiniCLIP(with_overrides(PRESETS["tiny"], text_encoder="lstm"), WordTokenizer.build(CAPTIONS, max_len=8))
    save_checkpoint(model.eval(), path)
    export_model(model, path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", seed=0)


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory) -> Path:
    """A second model (other weights, so another fingerprint) of the same architecture."""
    return build_checkpoint(tmp_path_factory.mktemp("ckpt2") / "other.safetensors", seed=1)


def draw(path: Path, colour: str = "red", shape: str = "circle", variant: int = 0, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_shape(path, colour, shape, variant, size)
    return path


def draw_noise(path: Path, seed: int, size: int = 24) -> Path:
    """A small photo of unique content (so no two are copies of each other)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def run_cli(*args) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(cli, [str(a) for a in args])


def cli_json(*args) -> dict:
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def eventually(check, timeout: float = 15.0, what: str = "condition", interval: float = 0.1):
    """Poll `check()` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def photosearch_command() -> list[str]:
    script = Path(sys.executable).with_name("photosearch")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from photosearch.cli.main import cli; cli()"]


def subprocess_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PHOTOSEARCH_LIBRARY"}
    env["OMP_NUM_THREADS"] = "1"  # two CPUs shared with the test process
    return env


class DaemonProcess:
    """`photosearch watch` as a real subprocess, its stderr in a log file."""

    def __init__(self, library: Path, checkpoint: Path, roots: list[Path], log: Path):
        self.library, self.checkpoint, self.roots, self.log_path = library, checkpoint, roots, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> DaemonProcess:
        args = [*photosearch_command(), "--library", self.library, "watch", *self.roots,
                "--checkpoint", self.checkpoint, "--settle", "0.2", "--poll", "0.5"]
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([str(a) for a in args], stdout=subprocess.DEVNULL, stderr=log,
                                         env=subprocess_env())
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the daemon answers on its socket."""
        def answers():
            self.check_alive()
            try:
                return ipc.request(self.library, {"op": "ping"}, timeout=5)
            except ipc.DaemonUnavailable:
                return None

        eventually(answers, timeout, "the daemon to answer")

    def wait_scanned(self, count: int = 1, timeout: float = 60.0) -> None:
        """Until `count` scans have finished (the log's "scan done" lines)."""
        def finished():
            self.check_alive()
            return self.log().count("scan done") >= count

        eventually(finished, timeout, f"scan #{count} to finish")

    def check_alive(self) -> None:
        assert self.alive(), f"daemon exited with {self.proc.returncode}:\n{self.log()}"

    def signal(self, sig: int, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def daemon_factory(tmp_path, tiny_checkpoint):
    """Make `DaemonProcess`es for a library in tmp_path; any left running are killed."""
    made: list[DaemonProcess] = []

    def make(roots: list[Path], library: Path | None = None) -> DaemonProcess:
        daemon = DaemonProcess(library or tmp_path / "lib", tiny_checkpoint, roots, tmp_path / f"daemon{len(made)}.log")
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop()
