"""Storage timings at library scale (not collected by pytest; run it by hand):

    .venv/bin/python tests/storage/bench_library.py [--n 100000] [--dim 640]

Prints: bulk ``set_vectors`` of 10k vectors, open time (index loaded from file), and search
latency p50/p90 through ``Library.search`` (k=10; SQL filters and record loading included),
with ``under=`` and for the raw FAISS index.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from photosearch.storage import Library, PhotoRecord


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1e3
    return f"p50 {np.percentile(ms, 50):.2f} ms, p90 {np.percentile(ms, 90):.2f} ms"


def timed(fn, repeats: list) -> list[float]:
    times = []
    for item in repeats:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=640)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((200, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "lib"
        batch_times = []
        with Library.open(folder) as lib:
            for start in range(0, args.n, args.batch):
                count = min(args.batch, args.n - start)
                vectors = rng.standard_normal((count, args.dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                records = [
                    PhotoRecord(path=f"/photos/{(start + i) % 10}/{start + i:07d}.jpg", size=1,
                                mtime=0.0, fingerprint=str(start + i))
                    for i in range(count)
                ]
                with lib.transaction():
                    ids = lib.add_photos(records)
                    began = time.perf_counter()
                    lib.set_vectors(dict(zip(ids, vectors)))
                    batch_times.append(time.perf_counter() - began)
            began = time.perf_counter()
        print(f"set_vectors of {args.batch} x {args.dim}: mean {np.mean(batch_times):.2f} s "
              f"(SQL part; FAISS add happens at commit)")
        print(f"close (atomic save): {time.perf_counter() - began:.2f} s")
        began = time.perf_counter()
        lib = Library.open(folder)
        print(f"open (read_index + check against SQLite): {time.perf_counter() - began:.2f} s, "
              f"repair={lib.stats()['index_repair']}")
        lib.search(queries[0], 10)  # warm-up
        print(f"Library.search k=10, {args.n} x {args.dim} flat: "
              f"{percentiles(timed(lambda q: lib.search(q, 10), queries))}")
        print(f"Library.search k=10 under one tenth: "
              f"{percentiles(timed(lambda q: lib.search(q, 10, under='/photos/3'), queries[:50]))}")
        raw = lib._vectors.index.faiss_index
        for threads in (1, faiss.omp_get_max_threads()):
            faiss.omp_set_num_threads(threads)
            print(f"raw FAISS IndexIDMap2(IndexFlatIP).search k=10, {threads} OpenMP thread(s): "
                  f"{percentiles(timed(lambda q: raw.search(q[None], 10), queries))}")
        lib.close()


if __name__ == "__main__":
    main()
