"""Word embeddings that start from MiniLM's: related words start near each other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from photosearch.miniclip.config import PRESETS, with_overrides
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.tokenizer import SPECIALS, WordTokenizer
from photosearch.miniclip.word_vectors import minilm_word_vectors

BUNDLED_CAPTIONS = Path(__file__).resolve().parent.parent.parent / "examples" / "photos" / "captions.json"


@pytest.fixture(scope="module")
def vocabulary() -> list[str]:
    captions = [e["caption"] for e in json.loads(BUNDLED_CAPTIONS.read_text())]
    return WordTokenizer.build(captions).itos[len(SPECIALS):] + ["puppy", "kitten"]


def test_related_words_start_closer_than_unrelated_ones(vocabulary):
    vectors = minilm_word_vectors(vocabulary, 64)
    assert vectors.shape == (len(vocabulary), 64) and vectors.dtype == np.float32
    assert vectors.std() == pytest.approx(1.0, abs=1e-3)  # what nn.Embedding starts from
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    at = {w: i for i, w in enumerate(vocabulary)}

    def cos(a: str, b: str) -> float:
        return float(unit[at[a]] @ unit[at[b]])

    assert cos("dog", "puppy") > cos("dog", "car") + 0.2
    assert cos("cat", "kitten") > cos("cat", "bus") + 0.2
    np.testing.assert_array_equal(vectors, minilm_word_vectors(vocabulary, 64))  # deterministic


def test_wider_than_minilm_pads_with_zeros(vocabulary):
    vectors = minilm_word_vectors(vocabulary[:500], 400)
    assert vectors.shape == (500, 400) and not vectors[:, 384:].any()


def test_training_starts_the_vocabulary_from_minilm_and_keeps_padding_zero(vocabulary):
    from photosearch.miniclip.pipeline import _start_from_minilm_words

    tokenizer = WordTokenizer(vocabulary[:50])
    model = MiniCLIP(with_overrides(PRESETS["tiny"], word_dim=16), tokenizer)
    _start_from_minilm_words(model, tokenizer)
    weight = model.text_encoder.embed.weight.detach().numpy()
    expected = minilm_word_vectors(tokenizer.itos[len(SPECIALS):], 16)
    np.testing.assert_allclose(weight[len(SPECIALS):], expected, atol=1e-6)
    assert not weight[0].any()  # padding
