"""Automatic tags: the backbone's ImageNet classes a photo shows, with their probability.

The image graph of an export gives each photo's 1,000 class probabilities beside its search
vector (`export`); the manifest names the classes (`tag_names`: the first synonym of each
WordNet description, "golden retriever", "seashore"). A photo keeps the classes whose
probability reaches `TAG_THRESHOLD`, at most `MAX_TAGS`, most probable first (`photo_tags`).
numpy only: this runs on the serving path.
"""

from __future__ import annotations

import numpy as np

# Chosen on the 51 demo photos (README, "Tags"): at 0.2 a photo gets 0.98 tags on average
# (max 3) and the tags read right ("bicycle-built-for-two", "zebra", "pizza", "tennis ball");
# at 0.1 a third more tags come in, mostly second guesses ("sandbar" beside "seashore"); at 0.3
# photos whose best class is spread over close classes (several dog breeds) lose their tag.
TAG_THRESHOLD = 0.2
MAX_TAGS = 5

# Two ImageNet classes share the single name "crane"; in class order: the bird, then the machine.
_SAME_NAME = {"crane": ["crane (bird)", "crane (machine)"]}


def tag_names(descriptions: list[str]) -> list[str]:
    """One readable, unique name per class: a description's first synonym, lower case.

    A first synonym that two classes share is told apart by the other class's second synonym
    ("maillot" and "maillot (tank suit)") or by `_SAME_NAME`. Raises ValueError when names
    still collide.
    """
    firsts = [d.split(",")[0].strip().lower() for d in descriptions]
    seen: dict[str, int] = {}
    names = []
    for first, description in zip(firsts, descriptions):
        if firsts.count(first) == 1:
            names.append(first)
            continue
        nth = seen.get(first, 0)
        seen[first] = nth + 1
        synonyms = [s.strip().lower() for s in description.split(",")[1:]]
        if first in _SAME_NAME:
            names.append(_SAME_NAME[first][nth])
        else:
            names.append(f"{first} ({synonyms[0]})" if synonyms else first)
    if len(set(names)) != len(names):
        raise ValueError("ImageNet class names collide; extend _SAME_NAME")
    return names


def photo_tags(probs: np.ndarray, names: list[str], threshold: float = TAG_THRESHOLD,
               limit: int = MAX_TAGS) -> list[list[tuple[str, float]]]:
    """Class probabilities float (B, C) -> per photo, [(name, probability)] at or above
    `threshold`, most probable first, at most `limit`."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != len(names):
        raise ValueError(f"expected class probabilities (B, {len(names)}), got {probs.shape}")
    order = np.argsort(-probs, axis=1, kind="stable")[:, :limit]  # (B, limit)
    return [[(names[c], round(float(row[c]), 4)) for c in top if row[c] >= threshold]
            for row, top in zip(probs, order)]
