"""Precision and recall of `photosearch duplicates --near` on generated copies of real photos.

Usage: ``.venv/bin/python -m benchmarks.duplicates [--others N] [--work-dir DIR] [--timing N]``

Each demo photo (../shared/data/demo-photos, else examples/photos) gets four edited copies:
re-encoded as JPEG quality 60, resized to 50%, cropped by 5% (2.5% off each side) and made
10% brighter. They are indexed with the shipped model beside the originals and N other photos
(Flickr8k dev, different scenes: default 1,000) in a fresh library, and the duplicate finder
runs at several cosine thresholds. A pair of photos is *found* when both land in one group;
precision = found pairs that are the same photo / found pairs, recall = same-photo pairs found
/ same-photo pairs (51 × 10). A *false group* holds two different photos. `--timing N` also
times the pair search alone on N vectors drawn around the library's (base + noise, as
benchmarks/photo_vectors.py does), exact and inverted file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from benchmarks.photo_vectors import BUNDLED, FLICKR8K
from photosearch.indexer.duplicates import NEAR_COSINE, NEAR_HASH_BITS, find_duplicates
from photosearch.storage import Library
from photosearch.storage import neighbours

DEMO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "demo-photos" / "images"
EDITS = ("q60", "half", "crop5", "bright10")
SETTINGS = [(NEAR_COSINE, NEAR_HASH_BITS), (0.80, 16), (0.90, 16), (0.85, 8), (0.85, 12), (0.85, 20),
            (0.85, 24), (0.85, 64), (0.94, 64), (0.96, 64)]  # (cosine, hash bits); 64 bits: vectors alone


def make_copies(source: Path, out: Path) -> None:
    """The four edited copies of `source`, as out/<stem>.<edit>.jpg (out/<stem>.orig.jpg: itself)."""
    image = Image.open(source).convert("RGB")
    w, h = image.size
    image.save(out / f"{source.stem}.orig.jpg", quality=95)
    image.save(out / f"{source.stem}.q60.jpg", quality=60)
    image.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(out / f"{source.stem}.half.jpg", quality=90)
    dx, dy = round(w * 0.025), round(h * 0.025)
    image.crop((dx, dy, w - dx, h - dy)).save(out / f"{source.stem}.crop5.jpg", quality=90)
    ImageEnhance.Brightness(image).enhance(1.10).save(out / f"{source.stem}.bright10.jpg", quality=90)


def build(work: Path, others: int) -> Path:
    photos, library = work / "photos", work / "library"
    if library.exists():
        return library
    (photos / "copies").mkdir(parents=True)
    (photos / "others").mkdir()
    demo = DEMO if DEMO.is_dir() else BUNDLED / "images"
    for source in sorted(demo.glob("*.jpg")):
        make_copies(source, photos / "copies")
    names = sorted({row["file_name"] for row in json.loads((FLICKR8K / "dev.json").read_text())})[:others]
    for name in names:
        os.symlink(FLICKR8K / "images" / name, photos / "others" / name)
    subprocess.run([str(Path(sys.executable).parent / "photosearch"), "--library", str(library), "index", str(photos)],
                   check=True, stdout=subprocess.DEVNULL)
    return library


def label(path: str) -> str:
    name = Path(path).name
    return name.split(".")[0] if "/copies/" in path else name


def score(groups: list[list[str]], paths: list[str]) -> dict:
    truth = [set(g) for g in itertools.groupby(sorted(paths, key=label), key=label) for g in [list(g[1])]]
    true_pairs = {frozenset(p) for g in truth if len(g) > 1 for p in itertools.combinations(sorted(g), 2)}
    found = {frozenset(p) for g in groups for p in itertools.combinations(sorted(g), 2)}
    right = {p for p in found if len({label(x) for x in p}) == 1}
    false_groups = sum(1 for g in groups if len({label(x) for x in g}) > 1)
    joined = {edit: 0 for edit in EDITS}
    for group in groups:
        for path in group:
            edit = Path(path).name.split(".")[1] if "/copies/" in path else None
            if edit in joined and any(label(o) == label(path) and ".orig." in o for o in group):
                joined[edit] += 1
    return {"precision": len(right) / len(found) if found else 1.0, "recall": len(right) / len(true_pairs),
            "groups": len(groups), "false_groups": false_groups, "joined": joined,
            "true_pairs": len(true_pairs), "found_pairs": len(found)}


def quality(library: Path) -> list[dict]:
    rows = []
    with Library.open(library, read_only=True) as lib:
        paths = [r.path for r in lib.photos_by_status("indexed")]
        for cosine, bits in SETTINGS:
            started = time.perf_counter()
            found = find_duplicates(lib, near=True, min_cosine=cosine, max_bits=bits)
            seconds = time.perf_counter() - started
            groups = [[p["path"] for p in g["photos"]] for g in found["groups"]]
            rows.append({"min_cosine": cosine, "max_bits": bits, "seconds": seconds, **score(groups, paths)})
        saved, neighbours.EXACT_LIMIT = neighbours.EXACT_LIMIT, 0  # the inverted file, as past 5k photos
        try:
            found = find_duplicates(lib, near=True)
        finally:
            neighbours.EXACT_LIMIT = saved
        groups = [[p["path"] for p in g["photos"]] for g in found["groups"]]
        rows.append({"min_cosine": NEAR_COSINE, "max_bits": NEAR_HASH_BITS, "seconds": 0.0, "ivf": True,
                     **score(groups, paths)})
    return rows


def timing(library: Path, count: int) -> dict:
    with Library.open(library, read_only=True) as lib:
        _, bases = lib.ids_and_vectors()
    rng = np.random.default_rng(0)
    bases = bases / np.linalg.norm(bases, axis=1, keepdims=True)
    spread = bases.std(0)
    picks = rng.integers(0, len(bases), count)
    vectors = (bases[picks] + 0.5 * spread * rng.standard_normal((count, bases.shape[1]), dtype=np.float32))
    vectors = np.ascontiguousarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)
    ids = np.arange(count, dtype=np.int64)
    out = {}
    for name, limit in (("exact", count), ("inverted file", 0)):  # pairs found: recall of IVF vs exact
        if name == "exact" and count > 20_000:
            continue  # minutes on a small CPU: the reason the inverted file exists
        saved, neighbours.EXACT_LIMIT = neighbours.EXACT_LIMIT, limit
        try:
            started, cpu = time.perf_counter(), time.process_time()
            a, _, _ = neighbours.near_pairs(ids, vectors, NEAR_COSINE)
            out[name] = {"seconds": round(time.perf_counter() - started, 1),
                         "cpu_seconds": round(time.process_time() - cpu, 1), "pairs": int(len(a))}
        finally:
            neighbours.EXACT_LIMIT = saved
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--others", type=int, default=1000, help="different Flickr8k dev photos added")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-duplicates")
    parser.add_argument("--timing", type=int, nargs="*", default=[], help="also time the pair search on N vectors")
    args = parser.parse_args(argv)
    library = build(args.work_dir / f"others-{args.others}", args.others)
    print(f"{'cosine':>6} {'bits':>4} {'precision':>9} {'recall':>6} {'groups':>6} {'false':>5} {'s':>5}"
          "  joined to original: " + " ".join(EDITS))
    for row in quality(library):
        joined = " ".join(f"{row['joined'][e]:>2}" for e in EDITS)
        print(f"{row['min_cosine']:>6.2f} {row['max_bits']:>4} {row['precision']:>9.3f} {row['recall']:>6.3f} "
              f"{row['groups']:>6} {row['false_groups']:>5} {row['seconds']:>5.2f}  {joined}"
              + ("  (inverted file)" if row.get("ivf") else ""))
    for count in args.timing:
        print(f"pair search on {count} vectors:", timing(library, count), flush=True)


if __name__ == "__main__":
    main()
