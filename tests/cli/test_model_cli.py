"""`photosearch export`, and what `train`, `evaluate` and `export` say without the train extra."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from photosearch.cli import model_cmds
from tests.daemon.conftest import run_cli, subprocess_env

# Runs the CLI with torch hidden, as in a runtime-only install (`pip install photosearch`).
WITHOUT_TORCH = ("import sys; sys.modules['torch'] = None\n"
                 "from photosearch.cli.main import cli\n"
                 "cli(sys.argv[1:], prog_name='photosearch')")


@pytest.mark.parametrize("args", [
    ["train", "--captions-json", "captions.json", "--image-root", "."],
    ["evaluate", "--captions-json", "captions.json", "--image-root", "."],
    ["export", "--checkpoint", "some.safetensors"],
    ["export"],
])
def test_training_commands_without_torch_say_what_to_install(tmp_path, args):
    out = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *args], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env=subprocess_env())
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"photosearch {args[0]} needs the training extra (torch not installed)" in out.stderr
    assert "pip install 'photosearch[train]'" in out.stderr and "pip install -e '.[train]'" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_works_without_torch():
    out = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, "export", "--help"], capture_output=True,
                         text=True, timeout=60, env=subprocess_env())
    assert out.returncode == 0 and "Example:" in out.stdout and "photosearch export" in out.stdout, out.stderr


def test_export_writes_the_onnx_towers_beside_the_checkpoint(tmp_path, tiny_checkpoint):
    checkpoint = shutil.copy(tiny_checkpoint, tmp_path / "mine.safetensors")
    result = run_cli("export", "--checkpoint", checkpoint)
    assert result.exit_code == 0, result.output
    written = [tmp_path / f"mine.{suffix}" for suffix in ("image.onnx", "text.onnx", "export.json")]
    assert [f"wrote {path}" for path in written] == result.stdout.splitlines()[:3]
    assert all(path.stat().st_size for path in written)
    as_json = run_cli("export", "--checkpoint", checkpoint, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["paths"] == [str(path) for path in written]


def test_export_defaults_to_the_shipped_checkpoint_and_reports_write_errors(monkeypatch):
    from photosearch.miniclip import export
    from photosearch.miniclip.checkpoint_header import default_checkpoint_path

    asked = []

    def cannot_write(path):
        asked.append(path)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(export, "export_checkpoint", cannot_write)  # never rewrites the shipped files
    result = run_cli("export")
    assert asked == [default_checkpoint_path()]
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == (f"Error: cannot write the export beside {default_checkpoint_path()}: Permission "
                                     "denied; copy the checkpoint into a folder you can write and export that copy")


def test_export_of_a_missing_checkpoint_is_one_line(tmp_path):
    result = run_cli("export", "--checkpoint", tmp_path / "none.safetensors")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "none.safetensors" in result.stderr and not list(tmp_path.iterdir())


def test_training_modules_are_what_the_train_extra_installs():
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    train_extra = " ".join(project["optional-dependencies"]["train"])
    assert all(name in train_extra for name in model_cmds.TRAINING_MODULES)
    assert not any(name in " ".join(project["dependencies"]) for name in model_cmds.TRAINING_MODULES)
