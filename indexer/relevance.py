"""One honest score: raw inner products mapped to a 0–1 relevance, and what the model knows.

A checkpoint's calibration lives beside it (`CKPT.calibration.json`, written by
`python -m benchmarks.calibrate_scores`), tied to the model fingerprint it was fitted for:

- `text`: a logistic fit `P(match | s) = σ(a·s + b)` of a text query's raw score `s` on Flickr8k
  dev pairs (a caption and its own photo: match; with another photo: no match; the two classes
  weighted equally);
- `image`: the same for a photo as the query (`similar`, `--like`), where two photos match when
  their captions say the same thing (see the benchmark);
- `no_match_below`: the relevance under which the best hit is "no good match" (chosen on dev);
- `vocabulary`: the words of the training captions and of the ImageNet class names the model
  knows (for "no word of this query is one the model knows").

Without a calibration for the model in use, scores stay raw inner products (`calibrated: false`)
and nothing is said about good matches.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

WORD = re.compile(r"[^\W\d_]+")  # a run of letters, any script
# Words too common to show that a query is understood ("a perro" is no better than "perro").
FUNCTION_WORDS = frozenset("a an the of in on at to and or with is are its his her their this that by for from".split())


@dataclass(frozen=True)
class Calibration:
    fingerprint: str
    text: tuple[float, float]  # (a, b): relevance = σ(a·s + b) for a text query's raw score s
    image: tuple[float, float]  # the same for a photo as the query
    no_match_below: float  # relevance of the best hit under which it is "no good match"
    vocabulary: frozenset = field(default_factory=frozenset)

    def relevance(self, raw: float, offset: float = 0.0) -> float:
        """A raw score on the text scale (plus the terms' `offset`) as a 0–1 relevance."""
        a, b = self.text
        return 1.0 / (1.0 + math.exp(-(a * (raw + offset) + b)))

    def image_scale(self) -> tuple[float, float]:
        """(factor, offset) that put a photo term's raw score on the text scale:
        a_t·(f·s + o) + b_t = a_i·s + b_i."""
        (at, bt), (ai, bi) = self.text, self.image
        return ai / at, (bi - bt) / at


def calibration_path(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".calibration.json")


def load_calibration(checkpoint: Path | None, fingerprint: str | None) -> Calibration | None:
    """The checkpoint's calibration if it exists and fits `fingerprint`, else None."""
    if checkpoint is None or fingerprint is None:
        return None
    try:
        data = json.loads(calibration_path(checkpoint).read_text())
        if data["fingerprint"] != fingerprint:
            return None
        return Calibration(fingerprint, tuple(data["text"]), tuple(data["image"]), float(data["no_match_below"]),
                           frozenset(data.get("vocabulary", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def unknown_text(text: str, vocabulary: frozenset) -> str | None:
    """Why `text` gives the model nothing to go on (no letters, or no word it knows), or None.

    Known: a word of `vocabulary` other than a function word. With no vocabulary (a model
    without a calibration or a word tokenizer), only a text with no letters at all is refused.
    """
    words = [word.lower() for word in WORD.findall(text)]
    if not words:
        return (f"{text!r} holds no word (only symbols or emoji), and the model reads English words: "
                "describe the photo in words, e.g. \"a dog on a beach\"")
    if vocabulary and not any(word in vocabulary and word not in FUNCTION_WORDS for word in words):
        return (f"no word of {text!r} is one the model knows (it learnt English from photo captions): "
                "describe the photo in English, e.g. \"a dog on a beach\"")
    return None
