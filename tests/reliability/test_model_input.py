"""Bad model and training input through the real CLI: every broken checkpoint, given to every
command that loads one, and every broken captions file given to `evaluate` (`train` has
its own test in tests/miniclip), ends in one clear line and a non-zero exit, never a
traceback, and a pickled checkpoint is refused without running it."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from photosearch.cli.main import cli
from tests.conftest import make_shapes_set


class Payload:
    """Unpickling this would run code: it writes a file named PWNED in the working folder."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('ran')",))


def other_architecture(source, path) -> None:
    """Our own format and metadata, but the config says another embedding width."""
    with safe_open(str(source), framework="pt") as f:
        meta = dict(f.metadata())
    config = json.loads(meta["config"])
    config["embed_dim"] *= 2
    meta["config"] = json.dumps(config, sort_keys=True)
    save_file(load_file(str(source)), str(path), metadata=meta)


CHECKPOINTS = {
    "empty file": lambda src, p: p.write_bytes(b""),
    "truncated checkpoint": lambda src, p: p.write_bytes(src.read_bytes()[: src.stat().st_size // 2]),
    "random bytes": lambda src, p: p.write_bytes(bytes(range(256)) * 64),
    "another program's safetensors": lambda src, p: save_file({"fc.weight": torch.zeros(4, 4)}, str(p)),
    "another architecture": other_architecture,
    "pickled object": lambda src, p: torch.save({"state_dict": Payload()}, p),
}


@pytest.fixture
def dataset(tmp_path):
    images = tmp_path / "images"
    entries = make_shapes_set(images, range(0, 1))
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps(entries))
    return {"images": images, "captions": captions, "root": tmp_path}


def one_clear_line(result, *must_contain: str) -> None:
    output = result.output.strip()
    assert result.exit_code != 0, output
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    for text in must_contain:
        assert text in output, output


@pytest.mark.parametrize("command", ["evaluate", "index", "watch"])
@pytest.mark.parametrize("broken", list(CHECKPOINTS))
def test_a_broken_checkpoint_is_one_clear_error(tmp_path, tiny_checkpoint, dataset, monkeypatch, broken, command):
    monkeypatch.chdir(tmp_path)
    checkpoint = tmp_path / "model.safetensors"
    CHECKPOINTS[broken](tiny_checkpoint, checkpoint)
    library = tmp_path / "lib"
    args = {
        "evaluate": ["evaluate", "--checkpoint", checkpoint, "--captions-json", dataset["captions"],
                     "--image-root", dataset["images"], "--cache-dir", tmp_path / "cache"],
        "index": ["--library", library, "index", dataset["images"], "--checkpoint", checkpoint],
        "watch": ["--library", library, "watch", dataset["images"], "--checkpoint", checkpoint],
    }[command]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    one_clear_line(result, str(checkpoint))
    assert not (tmp_path / "PWNED").exists()


CAPTIONS = {
    "not JSON": "{not json",
    "wrong shape": '{"file_name": "red_circle_0.png", "caption": "a red circle"}',
    "empty": "[]",
    "missing images": '[{"file_name": "nope.png", "caption": "a cat"}]',
    "only empty captions": '[{"file_name": "red_circle_0.png", "caption": "  "}]',
}


@pytest.mark.parametrize("broken", list(CAPTIONS))
def test_broken_captions_are_one_clear_error_for_evaluate(tmp_path, tiny_checkpoint, dataset, broken):
    captions = tmp_path / "bad.json"
    captions.write_text(CAPTIONS[broken])
    result = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(tiny_checkpoint), "--captions-json",
                                      str(captions), "--image-root", str(dataset["images"])])
    one_clear_line(result, str(captions))
