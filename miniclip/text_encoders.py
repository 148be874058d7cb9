"""Text towers: captions -> (B, embed_dim) vectors before normalisation.

Word-level encoders (`lstm`, `transformer`, `bow`) take `(ids (B, T), lengths (B,))` from the
WordTokenizer. `minilm` takes raw strings, or the (B, 384) sentence embeddings of its frozen part
when those were cached.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from photosearch.miniclip.config import ModelConfig
from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.minilm_files import minilm_source

log = logging.getLogger(__name__)



class ProjectionHead(nn.Module):
    """MLP with BatchNorm and dropout, plus a linear skip so the head starts near a projection."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float, input_dropout: float = 0.0):
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )
        self.skip = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(x)
        return self.mlp(x) + self.skip(x)  # (B, out_dim)


class LSTMEncoder(nn.Module):
    """Bidirectional LSTM over packed sequences; mean of the outputs over real tokens."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.word_dim, padding_idx=0)
        self.lstm = nn.LSTM(
            cfg.word_dim, cfg.lstm_hidden, num_layers=cfg.lstm_layers, batch_first=True,
            bidirectional=True, dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0,
        )
        self.head = ProjectionHead(2 * cfg.lstm_hidden, cfg.head_hidden, cfg.embed_dim, cfg.dropout)

    def forward(self, tokens: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, lengths = tokens
        packed = pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])  # (B, T, 2H)
        mask = (ids != 0).unsqueeze(-1).float()  # (B, T, 1)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, 2H)
        return self.head(pooled)


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length).unsqueeze(1)  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))  # (D/2,)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table  # (T, D)


class TransformerTextEncoder(nn.Module):
    """Pre-LayerNorm transformer with sinusoidal positions; the CLS token's output is the caption."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.tf_dim, padding_idx=0)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.tf_dim))
        self.register_buffer("positions", sinusoidal_positions(cfg.max_len + 1, cfg.tf_dim), persistent=False)
        layer = nn.TransformerEncoderLayer(
            cfg.tf_dim, cfg.tf_heads, dim_feedforward=4 * cfg.tf_dim, dropout=cfg.dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.tf_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.tf_dim)
        self.head = ProjectionHead(cfg.tf_dim, cfg.head_hidden, cfg.embed_dim, cfg.dropout)

    def forward(self, tokens: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, _ = tokens
        x = torch.cat([self.cls.expand(ids.shape[0], -1, -1), self.embed(ids)], dim=1)  # (B, 1+T, D)
        x = x + self.positions[: x.shape[1]]
        pad = torch.cat([torch.zeros_like(ids[:, :1], dtype=torch.bool), ids == 0], dim=1)  # (B, 1+T)
        x = self.encoder(x, src_key_padding_mask=pad)
        return self.head(self.norm(x[:, 0]))  # (B, E)


class BagOfWordsEncoder(nn.Module):
    """Baseline: the mean of the caption's word embeddings."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.word_dim, padding_idx=0)
        self.head = ProjectionHead(cfg.word_dim, cfg.head_hidden, cfg.embed_dim, cfg.dropout)

    def forward(self, tokens: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, _ = tokens
        mask = (ids != 0).unsqueeze(-1).float()  # (B, T, 1)
        return self.head((self.embed(ids) * mask).sum(1) / mask.sum(1).clamp(min=1))


class MiniLMEncoder(nn.Module):
    """all-MiniLM-L6-v2 (mean pooled, normalised, 384-d) and a trainable projection head.

    The transformer is frozen unless `minilm_finetune_layers` > 0, in which case its top layers train.
    """

    sentence_dim = 384

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        source = minilm_source()
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.bert = AutoModel.from_pretrained(source)
        self.finetune_layers = cfg.minilm_finetune_layers
        for p in self.bert.parameters():
            p.requires_grad = False
        if self.finetune_layers:
            for layer in self.bert.encoder.layer[-self.finetune_layers:]:
                for p in layer.parameters():
                    p.requires_grad = True
        self.max_len = 64
        self.head = ProjectionHead(self.sentence_dim, cfg.head_hidden, cfg.embed_dim, cfg.dropout, cfg.input_dropout)

    def sentence_embeddings(self, texts: list[str]) -> torch.Tensor:
        """The frozen part: normalised mean-pooled MiniLM embeddings (B, 384)."""
        device = next(self.bert.parameters()).device
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = self.bert(**batch).last_hidden_state  # (B, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, 384)
        return nn.functional.normalize(pooled, dim=-1)

    def forward(self, texts: list[str] | torch.Tensor) -> torch.Tensor:
        if isinstance(texts, torch.Tensor):
            return self.head(texts)  # cached sentence embeddings (B, 384)
        if self.finetune_layers:
            return self.head(self.sentence_embeddings(texts))
        with torch.no_grad():
            sentences = self.sentence_embeddings(texts)
        return self.head(sentences)


def build_text_encoder(cfg: ModelConfig) -> nn.Module:
    builders = {"lstm": LSTMEncoder, "transformer": TransformerTextEncoder, "bow": BagOfWordsEncoder, "minilm": MiniLMEncoder}
    if cfg.text_encoder not in builders:
        raise CheckpointError(f"unknown text encoder {cfg.text_encoder!r}; choose one of {', '.join(builders)}")
    return builders[cfg.text_encoder](cfg)
