"""Embedder throughput under different settings: how its defaults were chosen.

    .venv/bin/python -m benchmarks.embedder_settings [--count 64] [--checkpoint C]

Embeds the same generated 12 MP photos (benchmarks.photos) in-process with each setting
(decode threads, torch threads, decode size, channels_last, precision) and prints photos/s
and the cosine of the vectors to the first setting's. No SQLite, no fingerprints: the
embedder alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

# (label, Embedder keyword arguments); the first is the behaviour before the fast path
SETTINGS = [
    ("before: decode >= 448 px, torch 2 threads, contiguous, float32",
     dict(workers=2, torch_threads=2, decode_side=448, channels_last=False, precision="float32")),
    ("decode >= 224 px (1/8 JPEG scale)",
     dict(workers=2, torch_threads=2, decode_side=224, channels_last=False, precision="float32")),
    ("+ channels_last", dict(workers=2, torch_threads=2, decode_side=224, channels_last=True, precision="float32")),
    ("+ torch 1 thread while embedding",
     dict(workers=2, torch_threads=1, decode_side=224, channels_last=True, precision="float32")),
    ("+ bfloat16 autocast (the defaults)",
     dict(workers=2, torch_threads=1, decode_side=224, channels_last=True, precision="bfloat16")),
    ("defaults with 3 decode threads",
     dict(workers=3, torch_threads=1, decode_side=224, channels_last=True, precision="bfloat16")),
    ("defaults with 1 decode thread",
     dict(workers=1, torch_threads=1, decode_side=224, channels_last=True, precision="bfloat16")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-benchmarks")
    parser.add_argument("--only", default=None, help="comma-separated setting numbers (0-based)")
    args = parser.parse_args()

    import torch

    from benchmarks.models import benchmark_checkpoint
    from benchmarks.photos import photo_set
    from photosearch.indexer import service
    from photosearch.indexer.embedder import Embedder

    photos = photo_set(args.work_dir, 4000, 3000, args.count)
    checkpoint, _ = benchmark_checkpoint(args.work_dir, False, args.checkpoint)
    model = service.load_model(checkpoint)
    paths = [str(p) for p in photos.paths]
    reference = None
    chosen = [int(i) for i in args.only.split(",")] if args.only else range(len(SETTINGS))
    for i in chosen:
        label, kwargs = SETTINGS[i]
        model.image_trunk.to(memory_format=torch.contiguous_format)  # the Embedder switches it when asked
        with Embedder(model, **kwargs) as embedder:
            embedder.embed_files(paths[:8])  # warm-up
            started = time.perf_counter()
            vectors, errors = embedder.embed_files(paths)
            rate = len(paths) / (time.perf_counter() - started)
        matrix = np.stack([vectors[p] for p in paths])
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
        reference = matrix if reference is None else reference
        cosine = float(np.min(np.sum(matrix * reference, axis=1)))
        print(f"{i}. {label:62s} {rate:6.1f} photos/s  min cosine to #0 {cosine:.4f}  errors {len(errors)}",
              flush=True)


if __name__ == "__main__":
    main()
