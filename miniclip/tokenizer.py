"""Word tokenizer for the from-scratch text encoders: lowercase, punctuation split, fixed vocabulary."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
SPECIALS = (PAD, UNK, CLS)
MAX_WORDS, MAX_LEN = 200_000, 1024  # = config.BOUNDS' vocab_size and max_len
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def split_words(text: str) -> list[str]:
    """'A dog, running!' -> ['a', 'dog', ',', 'running', '!']"""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Maps captions to fixed-length id tensors; index 0 is padding, 1 unknown, 2 the CLS token."""

    def __init__(self, words: list[str], max_len: int = 32):
        self.itos = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.max_len = max_len

    @classmethod
    def build(cls, captions: Iterable[str], max_words: int = 5000, max_len: int = 32) -> "WordTokenizer":
        """Vocabulary = the most frequent words of the training captions (ties broken alphabetically)."""
        counts = Counter(w for c in captions for w in split_words(c))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([w for w, _ in ranked[: max_words - len(SPECIALS)]], max_len=max_len)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        ids = [self.stoi.get(w, 1) for w in split_words(text)][: self.max_len]
        return ids or [1]

    def arrays(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded ids (B, T) int64 and true lengths (B,) int64, T = the longest in the batch."""
        encoded = [self.encode(t) for t in texts]
        lengths = np.array([len(e) for e in encoded], dtype=np.int64)
        ids = np.zeros((len(encoded), int(lengths.max())), dtype=np.int64)  # (B, T)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = e
        return ids, lengths

    def batch(self, texts: list[str]):
        """`arrays` as torch tensors (training side): ids (B, T) long, lengths (B,) long."""
        import torch

        ids, lengths = self.arrays(texts)
        return torch.from_numpy(ids), torch.from_numpy(lengths)

    def to_dict(self) -> dict:
        return {"words": self.itos[len(SPECIALS):], "max_len": self.max_len}

    @classmethod
    def from_dict(cls, data: dict) -> "WordTokenizer":
        """The tokenizer `to_dict` wrote; ValueError for one too large or of the wrong shape
        (it comes from a checkpoint file, and its size becomes an embedding table)."""
        words, max_len = data["words"], data["max_len"]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words) or len(words) > MAX_WORDS:
            raise ValueError(f"the vocabulary must be a list of at most {MAX_WORDS} words")
        if isinstance(max_len, bool) or not isinstance(max_len, int) or not 1 <= max_len <= MAX_LEN:
            raise ValueError(f"the tokenizer's max_len must be a whole number from 1 to {MAX_LEN}")
        return cls(words, max_len=max_len)
