"""Query encoding without torch: the MiniLM text tower and the score fusion, in numpy.

A fresh `photosearch query` pays for every import before it can answer: torch alone takes about
a second to import, and transformers' BERT pulls in torch._dynamo and torch.distributed for
another one or two. Encoding one query is a few dozen small matrix products, so this module
runs the same computation as `MiniCLIP.encode_search_texts` for MiniLM checkpoints with numpy,
the `tokenizers` library (the Rust tokenizer transformers itself uses) and weights read from
the safetensors files. tests/miniclip/test_query_encoder.py holds it to the torch model.

Word-level text towers (lstm, transformer, bow) are not ported: `load_query_encoder` returns
None for them and the caller loads the torch model.
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
BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm1d's default
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


class _Head:
    """ProjectionHead in eval mode: Linear, BatchNorm (running statistics), GELU, Linear; plus skip."""

    def __init__(self, weights: dict[str, np.ndarray], prefix: str):
        w = {name.removeprefix(prefix + "."): value for name, value in weights.items() if name.startswith(prefix + ".")}
        scale = w["mlp.1.weight"] / np.sqrt(w["mlp.1.running_var"] + BATCH_NORM_EPS)
        self.w1 = (w["mlp.0.weight"] * scale[:, None]).T  # BatchNorm folded into the first Linear
        self.b1 = (w["mlp.0.bias"] - w["mlp.1.running_mean"]) * scale + w["mlp.1.bias"]
        self.w2, self.b2 = w["mlp.4.weight"].T, w["mlp.4.bias"]
        self.skip = w["skip.weight"].T

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _gelu(x @ self.w1 + self.b1) @ self.w2 + self.b2 + x @ self.skip


class QueryEncoder:
    """`encode_search_texts` of a MiniLM checkpoint, with its `fingerprint` and `checkpoint_path`."""

    def __init__(self, checkpoint: Path, fingerprint: str, tokenizer, bert: _Bert, head: _Head,
                 concept_weight: float, clip_cov: np.ndarray | None, concept_cov: np.ndarray | None):
        self.checkpoint_path = checkpoint
        self.fingerprint = fingerprint
        self.tokenizer = tokenizer
        self.bert, self.head = bert, head
        self.concept_weight = concept_weight
        self.clip_cov, self.concept_cov = clip_cov, concept_cov
        from threadpoolctl import ThreadpoolController

        # One query's products are small: BLAS threads cost more to wake than they save
        # (4 ms on one thread against 8-14 ms on two, on the 2-core benchmark machine).
        self._blas = ThreadpoolController()

    def sentence_embeddings(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)  # (B, T), padded to the longest
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return self.bert.sentence_embeddings(ids, mask)

    def encode_search_texts(self, texts: list[str], concept_weight: float | None = None) -> np.ndarray:
        """As MiniCLIP.encode_search_texts: queries -> search vectors (N, D) float32."""
        weight = self.concept_weight if concept_weight is None else concept_weight
        with self._blas.limit(limits=1, user_api="blas"):
            sentences = self.sentence_embeddings(texts)  # (N, 384)
            clip_q = _normalize(self.head(sentences))  # (N, E)
        if self.clip_cov is None:
            return clip_q.astype(np.float32)
        a = 1.0 / _score_std(clip_q, self.clip_cov)
        b = weight / _score_std(sentences, self.concept_cov)
        total = a + b
        fused = np.concatenate([clip_q * (a / total)[:, None], sentences * (b / total)[:, None]], axis=-1)
        return fused.astype(np.float32)


def _score_std(queries: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """= concepts.score_std: sqrt(q^T C q) per query."""
    return np.sqrt(np.maximum(np.einsum("bd,de,be->b", queries, covariance, queries), 1e-12))


def load_query_encoder(path: str | Path) -> QueryEncoder | None:
    """The numpy query encoder of checkpoint `path`, or None when its text tower is not MiniLM."""
    from safetensors import safe_open

    from photosearch.miniclip.checkpoint_header import read_metadata
    from photosearch.miniclip.minilm_files import minilm_folder

    path = Path(path)
    meta = read_metadata(path)
    try:
        config = json.loads(meta["config"])
        if config.get("text_encoder") != "minilm":
            return None
        with safe_open(str(path), framework="numpy") as f:
            keys = set(f.keys())
            own = {k: f.get_tensor(k) for k in keys
                   if k.startswith("text_encoder.") or k in ("clip_cov", "concept_cov")}
        fused = float(config.get("concept_weight", 0.0)) > 0
        head = _Head(own, "text_encoder.head")
        clip_cov, concept_cov = (own["clip_cov"], own["concept_cov"]) if fused else (None, None)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} does not match its architecture (minilm): {exc}") from None
    except Exception:
        raise CheckpointError(f"{path} is corrupt: its tensors cannot be read") from None
    folder = minilm_folder()
    if folder is None:
        return None  # no offline copy: the torch model fetches it by its hub name
    bert_weights = {k.removeprefix("text_encoder.bert."): v for k, v in own.items() if k.startswith("text_encoder.bert.")}
    if not bert_weights:  # frozen MiniLM: the weights come from the package
        with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
            bert_weights = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("pooler.")}
    return QueryEncoder(path, meta["fingerprint"], _tokenizer(folder), _Bert(bert_weights), head,
                        float(config.get("concept_weight", 0.0)), clip_cov, concept_cov)


def _tokenizer(folder: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
    return tokenizer
