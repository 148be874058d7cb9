"""Embedder throughput under different settings: how its defaults were chosen.

    .venv/bin/python -m benchmarks.embedder_settings [--count 64] [--rounds 3] [--checkpoint C]

Embeds the same generated 12 MP photos (benchmarks.photos) in-process with each setting: decode
threads (`Embedder(workers=)`), ONNX Runtime intra-op threads and whether they spin while
waiting (`SearchModel.load_image_tower(threads, spinning)`), and prints photos/s, median and
spread over `--rounds` interleaved rounds (every setting once per round, in a rotated order),
the process's CPU time per photo (all threads: what spinning costs shows here, and it is less
disturbed by other processes than the rate), and the minimum cosine of the vectors to the first
setting's. No SQLite, no fingerprints: the
embedder alone. The page cache is warmed first, so the files are read from memory.

The torch embedder's settings (decode size, channels_last, bf16 autocast, torch threads) were
chosen the same way; their figures are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def settings(cores: int) -> list[tuple[str, dict]]:
    """(label, {workers, threads, spinning}); the first is the embedder's defaults."""
    out = [(f"defaults: {min(8, cores)} decode, ORT {cores} threads, no spinning",
            dict(workers=min(8, cores), threads=cores, spinning=False))]
    for threads in (1, 2):
        for spinning in (False, True):
            for workers in (1, 2, 3):
                if (workers, threads, spinning) != (min(8, cores), cores, False):
                    out.append((f"{workers} decode, ORT {threads} thread{'s' * (threads > 1)}, "
                                f"{'spinning' if spinning else 'no spinning'}",
                                dict(workers=workers, threads=threads, spinning=spinning)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-benchmarks")
    parser.add_argument("--only", default=None, help="comma-separated setting numbers (0-based)")
    args = parser.parse_args()

    from benchmarks.machine import cpu_flags, describe
    from benchmarks.models import benchmark_checkpoint
    from benchmarks.photos import photo_set
    from photosearch.indexer import service
    from photosearch.indexer.embedder import Embedder
    from photosearch.miniclip.runtime import available_cores

    photos = photo_set(args.work_dir, 4000, 3000, max(args.count, 160))  # the comparison's photo set
    checkpoint, _ = benchmark_checkpoint(args.work_dir, False, args.checkpoint)
    paths = [str(p) for p in photos.paths[: args.count]]
    for path in paths:  # warm the page cache
        Path(path).read_bytes()
    table = settings(available_cores())
    chosen = [int(i) for i in args.only.split(",")] if args.only else list(range(len(table)))
    rates: dict[int, list[float]] = {i: [] for i in chosen}
    cpu_ms: dict[int, list[float]] = {i: [] for i in chosen}  # this process's CPU time per photo
    cosines: dict[int, float] = {}
    reference = None
    load = os.getloadavg()
    for r in range(args.rounds):
        for i in chosen[r % len(chosen):] + chosen[: r % len(chosen)]:
            _, s = table[i]
            model = service.load_model(checkpoint, image=False).load_image_tower(s["threads"], s["spinning"])
            with Embedder(model, workers=s["workers"]) as embedder:
                embedder.embed_files(paths[:8])  # warm-up
                started, cpu = time.perf_counter(), time.process_time()
                vectors, errors = embedder.embed_files(paths)
                rates[i].append(len(paths) / (time.perf_counter() - started))
                cpu_ms[i].append((time.process_time() - cpu) / len(paths) * 1e3)
            matrix = np.stack([vectors[p] for p in paths])
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
            reference = matrix if reference is None else reference
            cosines[i] = min(cosines.get(i, 1.0), float(np.min(np.sum(matrix * reference, axis=1))))
    print(f"machine: {describe()}")
    print(f"{len(paths)} photos of 4000x3000; {args.rounds} rounds; load average {' '.join(f'{x:.2f}' for x in load)} "
          f"-> {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cpu flags {cpu_flags()}")
    for i in chosen:
        label, _ = table[i]
        med, lo, hi = statistics.median(rates[i]), min(rates[i]), max(rates[i])
        print(f"{i:2d}. {label:46s} {med:6.1f} photos/s ({lo:.1f}-{hi:.1f})  CPU {statistics.median(cpu_ms[i]):5.1f} "
              f"ms/photo  min cosine to #0 {cosines[i]:.6f}", flush=True)


if __name__ == "__main__":
    main()
