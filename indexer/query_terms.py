"""Query arithmetic: several weighted terms, texts or photos, combined into one query vector.

Written three ways, all ending as the same list of terms (dicts, as on the daemon's socket):

- the CLI: `photosearch query "beach" --and "dog" --not "night" --like ~/a.jpg`, each term
  optionally weighted with a `:WEIGHT` suffix (`--and "dog:0.5"`, `--not "night:2"`);
- the web page's search box: `beach + dog:0.5 - night` (terms separated by ` + ` or ` - `,
  with spaces around the sign, so "t-shirt" stays one word);
- the JSON (socket and API): `{"terms": [{"text": "dog", "weight": 0.5},
  {"image": "/abs/a.jpg", "weight": 1}, {"photo": 12, "weight": -1}]}`, and `{"vector": [...]}` for
  a photo the caller embedded itself (an upload to the web page).

The score of a photo is `Σ wᵢ · (termᵢ · photo)` with the weights scaled so the positive ones sum
to 1: one term alone scores exactly as a plain query (or `similar`), and `relevance.Calibration`
maps photo terms onto the text scale so texts and photos mix on one footing.
"""

from __future__ import annotations

import re

MAX_TERMS = 8
MAX_WEIGHT = 10.0
_WEIGHT = re.compile(r"^(.*\S)\s*:\s*([0-9]+(?:\.[0-9]+)?)$")
_SIGN = re.compile(r"\s+([+-])\s+")


class TermError(ValueError):
    """A query the user wrote that cannot be read as terms; the message says how to write it."""

    user_facing = True


def split_weight(text: str) -> tuple[str, float]:
    """`"dog:0.5"` -> ("dog", 0.5); `"dog"` -> ("dog", 1.0). A weight is a number from 0 to 10."""
    found = _WEIGHT.match(text.strip())
    if not found:
        return text.strip(), 1.0
    weight = float(found.group(2))
    if not 0 < weight <= MAX_WEIGHT:
        raise TermError(f"the weight of {found.group(1)!r} must be above 0 and at most {MAX_WEIGHT:g}")
    return found.group(1), weight


def text_term(text: str, sign: int = 1) -> dict:
    words, weight = split_weight(text)
    if not words:
        raise TermError("an empty term: every --and / --not needs words, e.g. --and \"dog\"")
    return {"text": words, "weight": sign * weight}


def image_term(path: str, sign: int = 1) -> dict:
    """`--like PHOTO[:WEIGHT]`; a file whose own name ends in `:2` is taken whole if it exists."""
    import os

    if os.path.exists(path):
        return {"image": os.path.abspath(path), "weight": float(sign)}
    name, weight = split_weight(path)
    return {"image": os.path.abspath(os.path.expanduser(name)), "weight": sign * weight}


def parse_expression(text: str) -> list[dict]:
    """The search box's syntax: `beach + dog:0.5 - night` -> three text terms."""
    parts = _SIGN.split(" " + text.strip())
    terms = [text_term(parts[0])] if parts[0].strip() else []
    for sign, words in zip(parts[1::2], parts[2::2]):
        terms.append(text_term(words, -1 if sign == "-" else 1))
    return check(terms)


def check(terms: list[dict]) -> list[dict]:
    """`terms` if they make a query: 1 to MAX_TERMS terms, at least one with a positive weight."""
    if not terms:
        raise TermError('the query is empty: say what to look for, e.g. "white chair"')
    if len(terms) > MAX_TERMS:
        raise TermError(f"too many terms ({len(terms)}): at most {MAX_TERMS}")
    for term in terms:
        kinds = [key for key in ("text", "image", "photo", "vector") if term.get(key) not in (None, "")]
        vector = term.get("vector")
        if vector is not None and not (isinstance(vector, list) and vector and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) < 1e6 for x in vector)):
            raise TermError("a vector term is a list of numbers")
        weight = term.get("weight", 1.0)
        if len(kinds) != 1 or isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                or not 0 < abs(weight) <= MAX_WEIGHT:
            raise TermError("each term is one of text, image or photo, with a weight from -10 to 10 (not 0)")
    if not any(term.get("weight", 1.0) > 0 for term in terms):
        raise TermError("every term is negative: say what to look for too, e.g. beach - night")
    return terms


def describe(terms: list[dict]) -> str:
    """The terms written back in the search box's syntax (for answers and messages)."""
    out = []
    for term in terms:
        weight = term.get("weight", 1.0)
        body = term.get("text") or (f"like {term['image']}" if term.get("image") else
                                    f"like photo {term['photo']}" if term.get("photo") is not None else "like the photo given")
        body += "" if abs(weight) == 1 else f":{abs(weight):g}"
        out.append(body if not out and weight > 0 else f"{'-' if weight < 0 else '+'} {body}")
    return " ".join(out)
