"""The colour queries: captions that name a colour ("a man in a red shirt", "a black dog").

Frozen ImageNet features and augmentation that shifts hue both blur colour, so these queries get
their own figure beside the overall one (`photosearch evaluate`, "colour_t2i").
"""

from __future__ import annotations

import re

import numpy as np

COLOUR_WORDS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white",
                "grey", "gray", "tan", "blond", "blonde")
_WORD = re.compile(r"[a-z]+")


def names_colour(caption: str) -> bool:
    """True when the caption holds one of COLOUR_WORDS as a whole word (any case)."""
    return any(word in COLOUR_WORDS for word in _WORD.findall(caption.lower()))


def colour_query_rows(captions: list[str]) -> np.ndarray:
    """Indices (int64) of the captions that name a colour."""
    return np.array([i for i, c in enumerate(captions) if names_colour(c)], dtype=np.int64)
