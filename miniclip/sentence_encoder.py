"""all-MiniLM-L6-v2 sentence embeddings without torch, for the query path.

A fresh `photosearch query` pays for every import before it can answer, and encoding one query
is a few dozen small matrix products, so MiniLM's forward pass (BertModel, inference, then mean
pooling and normalisation, as sentence-transformers computes it) runs here in numpy with the
`tokenizers` library (the Rust tokenizer transformers itself uses). Weights come from the
copy bundled under `checkpoints/minilm/`, or from a checkpoint whose
MiniLM layers were fine-tuned. tests/miniclip/test_runtime.py holds it to the torch model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from photosearch.miniclip.errors import CheckpointError

BERT_LAYERS = 6
BERT_HEADS = 12
LAYER_NORM_EPS = 1e-12  # MiniLM's config.json
MAX_TOKENS = 64  # = MiniLMEncoder.max_len


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): numpy has none."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * weight + bias


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class _Bert:
    """all-MiniLM-L6-v2's forward pass (BertModel, inference) plus its mean pooling."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = weights

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def sentence_embeddings(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Token ids and attention mask (B, T) -> normalised mean-pooled embeddings (B, 384)."""
        w = self.w
        batch, length = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])  # (B, T, H)
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        hidden = x.shape[-1]
        head_dim = hidden // BERT_HEADS
        blocked = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)  # (B,1,1,T)
        for i in range(BERT_LAYERS):
            p = f"encoder.layer.{i}"

            def heads(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, length, BERT_HEADS, head_dim).transpose(0, 2, 1, 3)  # (B, h, T, d)

            q = heads(self._linear(x, f"{p}.attention.self.query"))
            k = heads(self._linear(x, f"{p}.attention.self.key"))
            v = heads(self._linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + blocked  # (B, h, T, T)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attended = (scores / scores.sum(-1, keepdims=True)) @ v  # (B, h, T, d)
            attended = attended.transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = _layer_norm(x + self._linear(attended, f"{p}.attention.output.dense"),
                            w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"])
            inner = _gelu(self._linear(x, f"{p}.intermediate.dense"))  # (B, T, 4H)
            x = _layer_norm(x + self._linear(inner, f"{p}.output.dense"),
                            w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"])
        m = mask[..., None].astype(np.float32)  # (B, T, 1)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return _normalize(pooled)


class SentenceEncoder:
    """Captions -> normalised MiniLM sentence embeddings (N, 384) float32, on one BLAS thread.

    One query's products are small: BLAS threads cost more to wake than they save (4 ms on one
    thread against 8-14 ms on two, on the 2-core benchmark machine).
    """

    def __init__(self, bert: _Bert, tokenizer):
        from threadpoolctl import ThreadpoolController

        self.bert, self.tokenizer = bert, tokenizer
        self._blas = ThreadpoolController()

    def __call__(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)  # (B, T), padded to the longest
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        with self._blas.limit(limits=1, user_api="blas"):
            return self.bert.sentence_embeddings(ids, mask).astype(np.float32)


_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
           "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def map_safetensors(path: Path, prefix: str = "") -> dict[str, np.ndarray]:
    """The tensors of a safetensors file whose names start with `prefix` (prefix removed), as
    read-only arrays mapped from the file, not copied.

    safetensors' own numpy loader copies every tensor (~65 ms for MiniLM's 90 MB on the 2-core
    machine); mapped, a query reads only the pages it touches: the layers, and of the 47 MB word
    embedding table just its tokens' rows. Layout per the safetensors format: an 8-byte little-
    endian header length, a JSON header of {name: {dtype, shape, data_offsets}}, then the data.
    Raises ValueError for a file that does not follow it.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        if not 0 < header_len <= min(size - 8, 100 << 20):
            raise ValueError("bad safetensors header length")
        header = json.loads(fh.read(header_len))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or not name.startswith(prefix):
            continue
        dtype = _DTYPES.get(info["dtype"])
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if dtype is None or not 0 <= start <= end <= len(data) or end - start != np.dtype(dtype).itemsize * math.prod(shape):
            raise ValueError(f"tensor {name} does not fit the file")
        tensors[name.removeprefix(prefix)] = data[start:end].view(dtype).reshape(shape)
    return tensors


def load_sentence_encoder(weights: dict[str, np.ndarray], tokenizer_file: Path) -> SentenceEncoder:
    """A SentenceEncoder from BertModel weights (names without the `text_encoder.bert.` prefix,
    any float dtype) and a tokenizer.json. Raises CheckpointError when a weight is missing."""
    from tokenizers import Tokenizer

    weights = {k: (v if v.dtype == np.float32 else v.astype(np.float32)) for k, v in weights.items()
               if not k.startswith("pooler.")}
    missing = [k for k in ("embeddings.word_embeddings.weight", f"encoder.layer.{BERT_LAYERS - 1}.output.dense.weight")
               if k not in weights]
    if missing:
        raise CheckpointError(f"the MiniLM weights lack {missing[0]}")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
    return SentenceEncoder(_Bert(weights), tokenizer)
