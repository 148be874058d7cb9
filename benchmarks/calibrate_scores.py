"""Fit the one relevance scale and the "no good match" threshold on Flickr8k dev; measure them.

    .venv/bin/python -m benchmarks.calibrate_scores [--flickr8k DIR] [--checkpoint FILE] [--work DIR] [--write]

1. The 1,000 dev photos go through the real `photosearch index` (the serving path) into a
   library under --work (kept, so a rerun skips it); the 5,000 dev captions are encoded as
   `photosearch query` encodes them.
2. Text scale: a logistic fit P(match | raw score) on (caption, its own photo) pairs against
   (caption, another photo) pairs, five per caption drawn at random, the classes weighted equally.
3. Photo scale (`similar`, `--like`): the same fit on photo-photo raw scores, where two photos
   match when their captions say the same thing: the cosine of their mean caption vectors
   (the text tower's, as queries) is in the top 1% of all pairs; negatives are pairs at random.
4. "No good match": for each content word used in the captions of 10 to 100 dev photos, up to
   five captions using it are asked of the whole dev library (their photos are there: the signal
   should stay quiet) and of the library without every photo whose captions use the word (there
   is no good match: it should fire). The threshold on the best hit's relevance is the highest
   that fires on at most 10% of the queries whose photos are there (false alarms), chosen on half
   the words; precision and recall are reported on that half and on the other, held-out half.
5. The vocabulary: words of the Flickr8k train captions (seen twice or more) and of the
   ImageNet class names (the ConSE side), for "no word of the query is one the model knows".

--write saves `CKPT.calibration.json` beside the checkpoint (what `query` and `similar` read).
A script, not a test: it needs Flickr8k and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.training import FLICKR8K

PHOTOSEARCH = str(Path(sys.executable).parent / "photosearch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flickr8k", type=Path, default=FLICKR8K)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    parser.add_argument("--work", type=Path, default=Path("/tmp/photosearch-calibration"))
    parser.add_argument("--write", action="store_true", help="save CKPT.calibration.json")
    args = parser.parse_args(argv)
    from photosearch.indexer.relevance import calibration_path
    from photosearch.indexer.service import DEFAULT_CHECKPOINT, load_query_model
    from photosearch.storage import Library

    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    captions = json.loads((args.flickr8k / "dev.json").read_text())
    names = sorted({c["file_name"] for c in captions})
    library = args.work / f"library-{checkpoint.stem}"
    if not (library / "library.sqlite").exists():
        photos = args.work / "photos"
        photos.mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (photos / name).exists():
                (photos / name).symlink_to((args.flickr8k / "images" / name).resolve())
        started = time.monotonic()
        subprocess.run([PHOTOSEARCH, "--library", str(library), "index", str(photos), "--checkpoint", str(checkpoint)],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"indexed {len(names)} dev photos in {time.monotonic() - started:.0f} s", file=sys.stderr)
    model = load_query_model(checkpoint)
    with Library.open(library, read_only=True) as lib:
        ids, vectors = lib.ids_and_vectors()
        path_of = {pid: Path(lib.get(int(pid)).path).name for pid in ids}
    row = {path_of[int(pid)]: i for i, pid in enumerate(ids)}
    photo_vectors = vectors[[row[name] for name in names]]  # (N, D) in `names` order
    texts = [c["caption"] for c in captions]
    owner = np.array([names.index(c["file_name"]) for c in captions])  # (Q,)
    cached = args.work / f"queries-{model.fingerprint}.npy"
    if cached.exists():
        queries = np.load(cached)
    else:
        started = time.monotonic()
        queries = np.concatenate([model.encode_search_texts(texts[i:i + 256]) for i in range(0, len(texts), 256)])
        print(f"encoded {len(texts)} captions in {time.monotonic() - started:.0f} s", file=sys.stderr)
        np.save(cached, queries)
    scores = queries @ photo_vectors.T  # (Q, N) raw scores

    rng = np.random.default_rng(0)
    text_fit = fit_text(scores, owner, rng)
    image_fit, image_report = fit_image(photo_vectors, queries, owner, rng)
    relevance = 1 / (1 + np.exp(-(text_fit[0] * scores + text_fit[1])))
    threshold, report = choose_threshold(relevance, captions, names, rng)
    vocabulary = words_known(args.flickr8k)
    result = {"fingerprint": model.fingerprint, "checkpoint": checkpoint.name, "text": list(text_fit),
              "image": list(image_fit), "no_match_below": threshold, "measured": {**report, **image_report},
              "made_by": "python -m benchmarks.calibrate_scores --write", "vocabulary": sorted(vocabulary)}
    print(json.dumps({k: v for k, v in result.items() if k != "vocabulary"}, indent=2))
    print(f"vocabulary: {len(vocabulary)} words", file=sys.stderr)
    if args.write:
        calibration_path(checkpoint).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {calibration_path(checkpoint)}", file=sys.stderr)
    return 0


def logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of P(y=1 | x) = σ(a·x + b), both classes weighted equally."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(class_weight="balanced", C=1e4).fit(x.reshape(-1, 1), y)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def fit_text(scores: np.ndarray, owner: np.ndarray, rng) -> tuple[float, float]:
    """Positives: each caption with its own photo; negatives: with five other photos drawn at
    random; the two classes weighted equally."""
    q = np.arange(len(owner))
    positive = scores[q, owner]
    others = rng.integers(0, scores.shape[1] - 1, size=(len(owner), 5))
    others += others >= owner[:, None]  # never the caption's own photo
    negative = scores[q[:, None], others].ravel()
    return logistic(np.concatenate([positive, negative]), np.r_[np.ones(len(positive)), np.zeros(len(negative))])


def fit_image(photo_vectors, queries, owner, rng) -> tuple[tuple[float, float], dict]:
    """Two photos match when their captions say the same thing: the cosine of their mean caption
    vectors is in the top 1% of all pairs. Positives: those pairs; negatives: pairs drawn at random."""
    n = len(photo_vectors)
    mean_caption = np.stack([queries[owner == i].mean(0) for i in range(n)])
    mean_caption /= np.linalg.norm(mean_caption, axis=1, keepdims=True)
    said = mean_caption @ mean_caption.T  # (N, N) how alike the captions are
    upper = np.triu_indices(n, 1)
    cut = float(np.quantile(said[upper], 0.99))
    raw = (photo_vectors @ photo_vectors.T)[upper]
    match = (said[upper] >= cut).astype(float)
    keep = (match == 1) | (rng.random(match.size) < 0.05)  # every match, a sample of the rest
    return logistic(raw[keep], match[keep]), {"image_match_caption_cosine": round(cut, 4),
                                              "image_pairs_matched": int(match.sum())}


def concept_queries(captions: list[dict], names: list[str], rng, per_word: int = 5) -> list[tuple[int, np.ndarray]]:
    """(query row, photos to take out) pairs: for each content word in the captions of 10 to 100
    dev photos, up to `per_word` captions that use it, and every photo any of whose captions does."""
    word = re.compile(r"[^\W\d_]+")
    from photosearch.indexer.relevance import FUNCTION_WORDS

    photos_of: dict[str, set[int]] = {}
    rows_of: dict[str, list[int]] = {}
    for row, caption in enumerate(captions):
        photo = names.index(caption["file_name"])
        for w in set(x.lower() for x in word.findall(caption["caption"])) - FUNCTION_WORDS:
            photos_of.setdefault(w, set()).add(photo)
            rows_of.setdefault(w, []).append(row)
    out = []
    for w in sorted(photos_of):
        if 10 <= len(photos_of[w]) <= 100 and len(w) > 2:
            rows = rng.choice(rows_of[w], size=min(per_word, len(rows_of[w])), replace=False)
            out += [(int(r), np.fromiter(photos_of[w], dtype=np.int64), w) for r in rows]
    return out


MAX_FALSE_ALARMS = 0.10  # the signal may fire on at most this share of queries whose photos are there


def choose_threshold(relevance: np.ndarray, captions, names, rng) -> tuple[float, dict]:
    """The "no good match" threshold on the best hit's relevance: the highest one that fires on
    at most MAX_FALSE_ALARMS of the queries whose photos are there, chosen on half the words and
    measured on the other half.

    A query about a word (a caption using it) is asked twice: of the whole dev library, where the
    photos its word describes are (the signal should stay quiet), and of the library without every
    photo whose captions use the word (it should fire: "man playing guitar" with no guitar)."""
    queries = concept_queries(captions, names, rng)
    words = sorted({w for _, _, w in queries})
    half = {w: i % 2 for i, w in enumerate(words)}
    best_with, best_without, part = [], [], []
    for row, taken_out, w in queries:
        scores = relevance[row]
        best_with.append(scores.max())
        keep = np.ones(scores.size, dtype=bool)
        keep[taken_out] = False
        best_without.append(scores[keep].max())
        part.append(half[w])
    best = np.r_[best_with, best_without]
    absent = np.r_[np.zeros(len(best_with), bool), np.ones(len(best_without), bool)]
    part = np.r_[part, part]
    chosen = part == 0
    candidates = np.unique(np.round(best[chosen], 3))
    false_alarm = np.array([(best[chosen & ~absent] < t).mean() for t in candidates])
    threshold = float(candidates[false_alarm <= MAX_FALSE_ALARMS].max())  # the most recall allowed
    from sklearn.metrics import roc_auc_score

    report = {"words": len(words), "queries": len(queries),
              "auc_best_relevance": round(float(roc_auc_score(absent, -best)), 3)}
    for name, mask in (("chosen_on_half_the_words", chosen), ("held_out_words", ~chosen)):
        p, r, f = _prf(best[mask] < threshold, absent[mask])
        report[name] = {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3),
                        "false_alarms": round(float((best[mask & ~absent] < threshold).mean()), 3)}
    report["tradeoff_held_out"] = {f"{t:.2f}": [round(v, 3) for v in _prf(best[~chosen] < t, absent[~chosen])[:2]]
                                   for t in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)}
    return round(threshold, 3), report


def _prf(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    hit = float((flagged & truth).sum())
    p = hit / max(flagged.sum(), 1)
    r = hit / max(truth.sum(), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def words_known(flickr8k: Path) -> set[str]:
    word = re.compile(r"[^\W\d_]+")
    train = json.loads((flickr8k / "train.json").read_text())
    counts = Counter(w.lower() for c in train for w in word.findall(c["caption"]))
    known = {w for w, n in counts.items() if n >= 2}
    try:
        from photosearch.miniclip.concepts import imagenet_class_names

        known |= {w.lower() for name in imagenet_class_names() for w in word.findall(name)}
    except ImportError:  # without the training extra: captions only
        print("warning: timm missing: the ImageNet class names are left out of the vocabulary", file=sys.stderr)
    return known


if __name__ == "__main__":
    raise SystemExit(main())
