"""Fit the one relevance scale and the "no good match" threshold on Flickr8k dev; measure them.

    .venv/bin/python -m benchmarks.calibrate_scores [--flickr8k DIR] [--checkpoint FILE] [--work DIR] [--write]

1. The 1,000 dev photos go through the real `photosearch index` (the serving path) into a
   library under --work (kept, so a rerun skips it); the 5,000 dev captions are encoded as
   `photosearch query` encodes them.
2. Text scale: a logistic fit P(match | raw score) on (caption, its own photo) pairs against
   (caption, one of its five best-scoring other photos) pairs: the impostors at the top of a
   list, where the score is read; the two classes weighted equally.
3. Photo scale (`similar`, `--like`): the same fit on photo-photo raw scores, where two photos
   match when their captions say the same thing: the cosine of their mean caption vectors
   (the text tower's, as queries) is in the top 1% of all pairs; negatives are each photo's five
   best-scoring unmatched photos.
4. "No good match": the photos are split in two halves; one half is the library, and the
   captions of both halves are the queries. A query of the other half has no true photo in the
   library: the signal should fire for it (positive), not for the library half's captions.
   The threshold on the best hit's relevance is the one with the best Youden J (recall of the
   signal minus its false-alarm rate) on split 1 (even ids as library); precision and recall are
   reported on split 1 and on the swapped split 2.
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
    threshold, report = choose_threshold(relevance, owner, len(names))
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
    """Positives: each caption's own photo. Negatives: its five best-scoring other photos (the
    impostors a user sees at the top of a list, not easy random photos)."""
    q = np.arange(len(owner))
    positive = scores[q, owner]
    others = scores.copy()
    others[q, owner] = -np.inf
    negative = np.sort(others, axis=1)[:, -5:].ravel()
    return logistic(np.concatenate([positive, negative]), np.r_[np.ones(len(positive)), np.zeros(len(negative))])


def fit_image(photo_vectors, queries, owner, rng) -> tuple[tuple[float, float], dict]:
    """Two photos match when their captions say the same thing: the cosine of their mean caption
    vectors is in the top 1% of all pairs. Positives: the matched pairs; negatives: each photo's
    five best-scoring unmatched photos."""
    n = len(photo_vectors)
    mean_caption = np.stack([queries[owner == i].mean(0) for i in range(n)])
    mean_caption /= np.linalg.norm(mean_caption, axis=1, keepdims=True)
    said = mean_caption @ mean_caption.T  # (N, N) how alike the captions are
    upper = np.triu_indices(n, 1)
    cut = float(np.quantile(said[upper], 0.99))
    raw = photo_vectors @ photo_vectors.T  # (N, N)
    match = said >= cut
    np.fill_diagonal(match, False)
    positive = raw[np.triu(match, 1)]
    impostor = np.where(match | np.eye(n, dtype=bool), -np.inf, raw)
    negative = np.sort(impostor, axis=1)[:, -5:].ravel()
    fit = logistic(np.r_[positive, negative], np.r_[np.ones(len(positive)), np.zeros(len(negative))])
    return fit, {"image_match_caption_cosine": round(cut, 4), "image_pairs_matched": int(len(positive))}


def choose_threshold(relevance: np.ndarray, owner: np.ndarray, n: int) -> tuple[float, dict]:
    def split(library_parity: int):
        in_library = np.arange(n) % 2 == library_parity
        best = relevance[:, in_library].max(1)  # (Q,) the best hit's relevance
        absent = ~in_library[owner]  # the caption's photo is not in the library
        return best, absent

    best, absent = split(0)
    candidates = np.unique(np.round(best, 3))
    youden = [(best[absent] < t).mean() - (best[~absent] < t).mean() for t in candidates]  # TPR - FPR
    threshold = float(candidates[int(np.argmax(youden))])
    report = {"tradeoff_split1": {f"{t:.2f}": dict(zip(("precision", "recall"), (round(v, 3) for v in _prf(best < t, absent)[:2])))
                                  for t in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, threshold)}}
    for name, parity in (("split1_chosen_on", 0), ("split2_held_out", 1)):
        best, absent = split(parity)
        p, r, f = _prf(best < threshold, absent)
        report[name] = {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3),
                        "queries": int(best.size), "without_their_photo": int(absent.sum()),
                        "flagged": int((best < threshold).sum())}
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
