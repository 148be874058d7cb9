"""Retrieval quality through the indexing fast path, against `photosearch evaluate`'s reference.

What `photosearch index` stores (reduced-size JPEG decoding, the ONNX export on ONNX Runtime) must
keep Flickr8k dev text→image R@1 within 0.3 points of `photosearch evaluate`, which embeds photos
the reference way (full decode, the torch model in float32). This script copies the 1,000 dev photos to a temporary folder, runs
the real `photosearch index` on it (the fast path), encodes the 5,000 dev captions as
`photosearch query` does, ranks the library's stored vectors and prints both sets of metrics.

    .venv/bin/python -m benchmarks.fast_path_quality [--flickr8k DIR] [--checkpoint FILE] [--cache-dir DIR]

A script, not a test: it needs Flickr8k and takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.models import process_env
from benchmarks.training import FLICKR8K

PHOTOSEARCH = str(Path(sys.executable).parent / "photosearch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flickr8k", type=Path, default=FLICKR8K)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache for the reference evaluation")
    args = parser.parse_args(argv)
    from photosearch.indexer.service import DEFAULT_CHECKPOINT, load_query_model
    from photosearch.miniclip.data import load_captions
    from photosearch.miniclip.metrics import retrieval_metrics
    from photosearch.storage import Library

    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    dev = load_captions(args.flickr8k / "dev.json", args.flickr8k / "images")
    with tempfile.TemporaryDirectory() as tmp:
        photos, library = Path(tmp) / "photos", Path(tmp) / "library"
        photos.mkdir()
        for path in dev.paths:
            shutil.copy2(path, photos / path.name)
        index = subprocess.run([PHOTOSEARCH, "--library", str(library), "index", str(photos), "--checkpoint",
                                          str(checkpoint), "--json"], capture_output=True, text=True, env=process_env())
        if index.returncode != 0:
            print(index.stderr.strip(), file=sys.stderr)
            return 1
        with Library.open(library, read_only=True) as lib:
            rows = []
            for path in dev.paths:
                record = lib.get_by_path(str(photos / path.name))
                rows.append(lib.get_vector(record.id))
        photo_vectors = np.stack(rows)  # (1000, D), in dev order
    queries = load_query_model(checkpoint).encode_search_texts(dev.captions)  # (5000, D)
    fast = retrieval_metrics(queries @ photo_vectors.T, dev.caption_image)
    reference = subprocess.run(
        [PHOTOSEARCH, "evaluate", "--checkpoint", str(checkpoint),
         "--captions-json", str(args.flickr8k / "dev.json"), "--image-root", str(args.flickr8k / "images"), "--json"]
        + (["--cache-dir", str(args.cache_dir)] if args.cache_dir else []),
        capture_output=True, text=True, env=process_env())
    if reference.returncode != 0:
        print(reference.stderr.strip(), file=sys.stderr)
        return 1
    ref = next(v for k, v in json.loads(reference.stdout).items() if k != "random")
    print(f"{'text→image on Flickr8k dev':34} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>7}")
    for name, m in (("photosearch evaluate (reference)", ref["t2i"]), ("photosearch index (fast path)", fast["t2i"])):
        print(f"{name:34} {m['R@1']:6.1f} {m['R@5']:6.1f} {m['R@10']:6.1f} {m['MRR']:7.3f}")
    print(f"R@1 difference: {fast['t2i']['R@1'] - ref['t2i']['R@1']:+.2f} points (target: within 0.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
