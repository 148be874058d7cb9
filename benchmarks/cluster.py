"""Beyond one machine: Ray's overhead on indexing, and a 1M-vector index built from 8 shards.

    python -m benchmarks.cluster [--photos 400] [--vectors 1000000] [--codec SQ8] [--skip-ray] [--skip-index]

1. **Ray vs one process** (`--photos` generated 2 MP JPEGs, as `benchmarks.photos` draws them):
   `photosearch index --json` and `photosearch index --ray ADDRESS --actors 2 --json` on the same
   photos, one after the other, each into a fresh library. The Ray run joins a 2-CPU cluster
   started beforehand on this machine (as a real deployment's is running before a job), so its
   seconds hold the actors' start and model load, not the cluster's. Rate = photos / the scan's own seconds (the report's `seconds`).
2. **1M vectors from 8 shards**: vectors drawn around real photo embeddings
   (`benchmarks.photo_vectors`: Flickr8k, else the bundled photos), written as 8 shards with
   `storage.vector_shards`; `storage.shard_index.build_shard_index` (train on a sample, fill
   the 8 shards in parallel, merge on disk); recall@10 of real caption queries against the exact
   scan, nprobe chosen for recall >= 0.95; warm query p50 with the lists memory-mapped
   (one query at a time, the second pass over the queries).

Every line carries the load average at the time, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import cpu_flags, describe
from benchmarks.models import run_photosearch
from benchmarks.photos import photo_set

SHARDS = 8
TARGET_RAY_SHARE = 0.80
TARGET_RECALL = 0.95
TARGET_P50_MS = 20.0


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def ray_vs_single(work: Path, count: int, checkpoint: str | None) -> list[dict]:
    photos = photo_set(work, 1920, 1080, count)
    head = _start_cluster()
    rows = []
    try:
        address = head.stdout.readline().strip()
        for label, extra in [("one process (photosearch index)", []),
                             ("Ray, 2 actors x 1 CPU (photosearch index --ray)", ["--ray", address, "--actors", "2"])]:
            library = work / "cluster-library"
            shutil.rmtree(library, ignore_errors=True)
            before = load()
            args = ["--library", library, "index", photos.folder, "--json", *extra]
            if checkpoint:
                args += ["--checkpoint", checkpoint]
            wall, result = run_photosearch(args)
            report = json.loads(result.stdout)
            if report["added"] != count:
                raise RuntimeError(f"{label}: added {report['added']} of {count}")
            rows.append({"what": label, "photos": count, "scan_s": report["seconds"], "wall_s": round(wall, 1),
                         "rate": count / report["seconds"], "load": f"{before} -> {load()}"})
            shutil.rmtree(library, ignore_errors=True)
    finally:
        head.stdin.close()  # the head process shuts its cluster down and exits
        head.wait(timeout=120)
    rows[1]["share"] = rows[1]["rate"] / rows[0]["rate"]
    return rows


# A Ray head node of 2 CPUs in a child process of ours (not `ray start`, whose `ray stop` would
# stop every Ray cluster on this shared machine): prints its address, runs until stdin closes.
HEAD = """
import sys, ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


def _start_cluster() -> subprocess.Popen:
    # A throw-away cluster on loopback: Ray's token authentication (on by default since 2.5x)
    # is turned off for it and for the `photosearch` processes that join it.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    return subprocess.Popen([sys.executable, "-c", HEAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def sharded_index(work: Path, n: int, codec: str, nlist: int | None, checkpoint: Path) -> dict:
    from photosearch.storage.shard_index import (
        ShardIndex,
        build_shard_index,
        exact_search,
    )
    from photosearch.storage.vector_shards import write_shard

    from benchmarks.photo_vectors import real_photo_vectors, text_queries

    source = real_photo_vectors(checkpoint, work, quick=False, flickr8k=None, feature_cache=None)
    folder = work / f"shards-{n}-{source.dim}"
    per_shard = -(-n // SHARDS)
    if not (folder / "done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        buffer, first = [], 0
        for start, vectors in source.chunks(n, seed=18):
            buffer.append(vectors)
            while sum(len(b) for b in buffer) >= per_shard or (start + len(vectors) == n and buffer):
                block = np.concatenate(buffer)
                write_shard(folder, first, np.arange(first, first + min(per_shard, len(block))), block[:per_shard])
                first += min(per_shard, len(block))
                buffer = [block[per_shard:]] if len(block) > per_shard else []
        (folder / "done").write_text("")
    _, queries = text_queries(checkpoint, 100)
    out = work / f"shard-index-{n}-{codec}"
    shutil.rmtree(out, ignore_errors=True)
    before = load()
    started = time.perf_counter()
    info = build_shard_index(folder, out, codec=codec, nlist=nlist, workers=2)
    build_s = time.perf_counter() - started
    build_load = f"{before} -> {load()}"
    started = time.perf_counter()
    _, exact = exact_search(folder, queries, 10)
    exact_s = time.perf_counter() - started
    index = ShardIndex.open(out)
    nprobe, recall, tried = index.choose_nprobe(queries, exact, target=TARGET_RECALL)
    latencies = []
    for rep in range(2):  # the first pass warms the page cache; the second is timed
        for query in queries:
            started = time.perf_counter()
            index.search(query[None], 10)
            if rep:
                latencies.append((time.perf_counter() - started) * 1e3)
    return {"vectors": n, "dim": info.dim, "shards": SHARDS, "factory": info.factory, "build_s": round(build_s, 1),
            "build_load": build_load, "index_bytes": info.index_bytes,
            "shard_bytes": sum(p.stat().st_size for p in folder.glob("part-*.npy")),
            "nprobe": nprobe, "recall_at_10": round(recall, 4), "tried": tried,
            "exact_scan_s_per_100_queries": round(exact_s, 2),
            "p50_ms": round(float(np.median(latencies)), 2), "p95_ms": round(float(np.percentile(latencies, 95)), 2),
            "query_load": load(), "vector_origin": source.origin, "mean_cosine_to_base": round(source.mean_cosine_to_base(), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--codec", default="SQ8")
    parser.add_argument("--nlist", type=int, default=None)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-index", action="store_true")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-benchmarks")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    from photosearch.indexer.resources import checkpoint_path

    print(describe())
    print("CPU flags:", cpu_flags())
    results = {}
    if not args.skip_ray:
        results["ray"] = ray_vs_single(args.work_dir, args.photos, None)
        for row in results["ray"]:
            print(f"{row['what']}: {row['rate']:.1f} photos/s ({row['photos']} photos, scan {row['scan_s']:.1f} s, "
                  f"process {row['wall_s']:.1f} s; {row['load']})")
        share = results["ray"][1]["share"]
        print(f"Ray / one process: {share:.0%} (target >= {TARGET_RAY_SHARE:.0%}: {'met' if share >= TARGET_RAY_SHARE else 'NOT met'})")
    if not args.skip_index:
        row = sharded_index(args.work_dir, args.vectors, args.codec, args.nlist, checkpoint_path(None))
        results["index"] = row
        print(f"{row['factory']} from {row['shards']} shards of {row['vectors']:,} x {row['dim']} vectors: "
              f"build {row['build_s']:.0f} s ({row['build_load']}), {row['index_bytes'] / 2**20:.0f} MiB on disk "
              f"(shards {row['shard_bytes'] / 2**20:.0f} MiB); recall@10 {row['recall_at_10']:.3f} at nprobe "
              f"{row['nprobe']} (tried {row['tried']}); warm p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms "
              f"mapped ({row['query_load']}); exact scan {row['exact_scan_s_per_100_queries']} s / 100 queries")
    out = args.work_dir / "cluster-results.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
