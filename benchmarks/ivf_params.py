"""IVF lists x probes on library-shaped vectors: recall@10 against exact search, and latency.

    .venv/bin/python -m benchmarks.ivf_params --n 100000 --lists 316,632,1264 [--spherical]

Vectors: `benchmarks.photo_vectors` around the cached real photo bases (the query section makes
them); queries: 100 captions of the bundled photos. Each list count is trained on 40 vectors a
list (k-means, 10 iterations with --spherical, FAISS's 25 otherwise) and probed at 1/32 .. 1/4
of its lists; one thread per query.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.models import benchmark_checkpoint
from benchmarks.photo_vectors import real_photo_vectors, text_queries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ivf_params", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--lists", default="316,632")
    parser.add_argument("--spherical", action="store_true")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-benchmarks")
    args = parser.parse_args(argv)
    checkpoint, _ = benchmark_checkpoint(args.work_dir, False, None)
    source = real_photo_vectors(checkpoint, args.work_dir, False, None, None)
    vectors = np.concatenate([v for _, v in source.chunks(args.n)])
    _, queries = text_queries(checkpoint, 100)
    exact = faiss.IndexFlatIP(source.dim)
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    for nlist in (int(x) for x in args.lists.split(",")):
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(source.dim), source.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if args.spherical:
            ivf.cp.spherical, ivf.cp.niter = True, 10
        sample = vectors[np.random.default_rng(0).choice(args.n, min(args.n, 40 * nlist), replace=False)]
        started = time.perf_counter()
        ivf.train(sample)
        trained = time.perf_counter() - started
        ivf.add(vectors)
        print(f"{nlist} lists: trained in {trained:.1f} s, added in {time.perf_counter() - started - trained:.1f} s")
        faiss.omp_set_num_threads(1)
        for nprobe in (nlist // 32, nlist // 16, nlist // 10, nlist // 8, nlist // 6, nlist // 4):
            ivf.nprobe = max(1, nprobe)
            seconds, found = [], []
            for query in queries:
                started = time.perf_counter()
                found.append(ivf.search(query[None], 10)[1][0])
                seconds.append(time.perf_counter() - started)
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
            print(f"  nprobe {ivf.nprobe}: recall@10 {recall:.4f}, p50 {np.median(seconds) * 1e3:.2f} ms, "
                  f"p95 {np.percentile(seconds, 95) * 1e3:.2f} ms")
        faiss.omp_set_num_threads(faiss.omp_get_num_procs())


if __name__ == "__main__":
    main()
