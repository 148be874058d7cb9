"""Query latency at library scale, warm (a running daemon) and cold, and the daemon's memory.

For each size N (synthetic library of N random unit vectors, `benchmarks.libraries`):
- in-process `Library.search` (k=10): the storage part alone, with the index type storage
  picked (flat, or HNSW above 200k) and its recall@10 against exact search;
- warm, socket: `indexer.ipc.request` to a real `photosearch watch` daemon (text encoding,
  search, the socket round-trip);
- warm, CLI: the whole `photosearch query` client process while that daemon runs;
- cold: `photosearch query` as a fresh process with no daemon (imports, model and index
  loading, encoding, search); the operating system's file cache is warm;
- the daemon's peak resident memory (VmHWM) after its start-up and the queries (targets at
  10k and 100k).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from benchmarks.daemon_process import DaemonProcess
from benchmarks.libraries import exact_top_k, synthetic_library
from benchmarks.photo_vectors import VectorSource, real_photo_vectors, text_queries
from benchmarks.models import run_photosearch
from benchmarks.report import Report, fmt_ms, percentiles_ms

TEXTS = ["white chair", "dog on a beach", "a red car parked in the street", "children playing football",
         "sunset over the sea", "a plate of food on a table", "mountains with snow", "a cat asleep on a sofa",
         "people dancing at a wedding", "a city street at night"]
WARM_TARGETS_MS = {100_000: 20.0, 1_000_000: 50.0}  # warm p50
COLD_TARGET_S = 0.5
MEMORY_TARGETS_MB = {10_000: 400, 100_000: 800}  # daemon VmHWM, decimal megabytes (issue 11)


def run(report: Report, checkpoint: Path, work: Path, quick: bool, sizes: list[int],
        flickr8k: Path | None = None, feature_cache: Path | None = None, log=print) -> None:
    source = real_photo_vectors(checkpoint, work, quick, flickr8k, feature_cache, log)
    report.notes.append(f"library vectors: around {source.origin} (mean cosine {source.mean_cosine_to_base():.2f} "
                "to their base); queries: captions of the bundled photos (benchmarks/photo_vectors.py)")
    root = work / "empty-root"  # what the daemon watches: nothing, so it only answers
    root.mkdir(parents=True, exist_ok=True)
    reps = {"socket": 5, "cli": 2, "cold": 1, "recall": 10} if quick else {"socket": 60, "cli": 15, "cold": 5, "recall": 100}
    for n in sizes:
        log(f"queries: library of {n:,} photos")
        folder, fill_s = synthetic_library(work, n, source, log)
        if fill_s is not None:
            report.add("query", f"{_size(n)}: fill library (SQLite + FAISS, one-off)", f"{fill_s:.0f} s",
                       note="benchmark set-up, reused by later runs", number=fill_s)
        kind = _storage_part(report, folder, n, source, checkpoint, reps["recall"])
        with DaemonProcess(folder, root, checkpoint, work / f"daemon-{n}.log") as daemon:
            socket_s = _socket_queries(folder, reps["socket"])
            cli_s = [run_photosearch(["--library", folder, "query", text, "-k", "10"])[0]
                     for text in _cycle(reps["cli"])]
            memory = daemon.memory()
            ready_s = daemon.ready_s
        target = WARM_TARGETS_MS.get(n)
        p50, p95 = percentiles_ms(socket_s)
        report.add("query", f"{_size(n)} ({kind}): warm, socket round-trip", fmt_ms(p50, p95),
                   f"p50 <= {target:g} ms" if target else "", (p50 <= target) if target else None,
                   note=f"{len(socket_s)} queries to a running `photosearch watch` (started in {ready_s:.1f} s)",
                   number=p50)
        p50, p95 = percentiles_ms(cli_s)
        report.add("query", f"{_size(n)} ({kind}): warm, `photosearch query` process", fmt_ms(p50, p95),
                   note=f"{len(cli_s)} client processes answered by the daemon", number=p50)
        cold_s = [run_photosearch(["--library", folder, "query", text, "-k", "10", "--checkpoint", checkpoint])[0]
                  for text in _cycle(reps["cold"])]
        p50, p95 = percentiles_ms(cold_s)
        report.add("query", f"{_size(n)} ({kind}): cold, `photosearch query` without daemon", fmt_ms(p50, p95),
                   f"<= {COLD_TARGET_S:g} s", p50 / 1e3 <= COLD_TARGET_S,
                   note=f"{len(cold_s)} fresh processes (file cache warm)", number=p50)
        peak, limit = memory.get("VmHWM", 0), MEMORY_TARGETS_MB.get(n)
        report.add("memory", f"daemon peak RSS (VmHWM), {_size(n)} photos", f"{peak / 2**20:.0f} MiB",
                   f"<= {limit} MB" if limit else "", (peak <= limit * 1e6) if limit else None,
                   note=f"`photosearch watch` pid, after start-up and {len(socket_s)} queries; "
                        f"RSS now {memory.get('VmRSS', 0) / 2**20:.0f} MiB", number=peak)
    if not quick:
        _cold_breakdown(report, folder, checkpoint, sizes[-1])


def _storage_part(report: Report, folder: Path, n: int, source: VectorSource, checkpoint: Path, queries: int) -> str:
    """Set the model's fingerprint on the library; time Library.search and its recall@10."""
    from photosearch.indexer.resources import MODEL_META_KEY, model_fingerprint
    from photosearch.storage import IndexConfig, Library, recall_at_k

    _, q = text_queries(checkpoint, queries)
    opened = time.perf_counter()
    with Library.open(folder, read_only=True):
        read_only_s = time.perf_counter() - opened
    opened = time.perf_counter()
    with Library.open(folder) as lib:
        open_s = time.perf_counter() - opened
        fingerprint = model_fingerprint(checkpoint)  # the export's: what the library must carry
        if lib.get_meta(MODEL_META_KEY) != fingerprint:
            lib.set_meta(MODEL_META_KEY, fingerprint)
        kind = lib.stats()["index_type"]
        lib.search(q[0], 10)
        seconds, found = [], []
        for vector in q:
            started = time.perf_counter()
            hits = lib.search(vector, 10)
            seconds.append(time.perf_counter() - started)
            found.append([hit.photo.id for hit in hits])
    exact = exact_top_k(n, source, np.load(folder / "benchmark-ids.npy"), q, 10)
    recall = recall_at_k(np.asarray(found), exact)
    p50, p95 = percentiles_ms(seconds)
    report.add("query", f"{_size(n)} ({kind}): Library.search alone, in-process", fmt_ms(p50, p95),
               note=f"{len(q)} caption queries, dim {source.dim}; library opened in {read_only_s:.2f} s read-only "
                    f"(as a cold query), {open_s:.1f} s for writing (CRC + id check)", number=p50)
    config = IndexConfig()
    note = (f"{len(q)} queries; flat is exact by construction" if kind == "flat" else
            f"{len(q)} queries, HNSW M {config.hnsw_m}, efConstruction {config.hnsw_ef_construction}, "
            f"efSearch {config.hnsw_ef_search}")
    report.add("query", f"{_size(n)} ({kind}): recall@10 vs exact search", f"{recall:.3f}", note=note, number=recall)
    return kind


def _socket_queries(folder: Path, count: int) -> list[float]:
    from photosearch.indexer import ipc

    for text in TEXTS[:2]:  # warm-up: first calls allocate
        ipc.request(folder, {"op": "query", "text": text, "k": 10})
    seconds = []
    for text in _cycle(count):
        started = time.perf_counter()
        answer = ipc.request(folder, {"op": "query", "text": text, "k": 10})
        seconds.append(time.perf_counter() - started)
        if len(answer["results"]) != 10:
            raise RuntimeError(f"the daemon answered {len(answer['results'])} results, not 10")
    return seconds


def _cold_breakdown(report: Report, folder: Path, checkpoint: Path, n: int) -> None:
    """Where a cold query's time goes: one fresh process timing each step."""
    code = f"""
import json, sys, time
t = {{}}; s = time.perf_counter()
def step(name):
    global s
    t[name] = time.perf_counter() - s; s = time.perf_counter()
from photosearch.indexer import service; from photosearch.indexer.searcher import Searcher; from photosearch.storage.reader import LibraryReader
import faiss; step('imports (cli, service, storage reader, FAISS)')
model = service.load_query_model({str(checkpoint)!r}); step('load query model (' + type(model).__name__ + ', text tower)')
lib = LibraryReader.open({str(folder)!r}); step('open library (storage.reader, as a cold query)')
v = model.encode_search_texts(['white chair'])[0]; step('encode text')
lib.search(v, 10); step('search')
heavy = [m for m in ('torch', 'transformers', 'torchvision', 'timm', 'sqlalchemy') if m in sys.modules]
print(json.dumps({{'steps': t, 'heavy': heavy}}))
"""
    import subprocess
    import sys

    from benchmarks.models import process_env

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=process_env(), timeout=600)
    if out.returncode != 0:
        report.skip("query", "cold query breakdown", out.stderr.strip().splitlines()[-1][:120])
        return
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    steps = answer["steps"]
    text = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in steps.items())
    text += f"; heavy modules imported: {', '.join(answer['heavy']) or 'none'}"
    report.add("query", f"{_size(n)}: cold query breakdown (one process)", f"{sum(steps.values()):.2f} s", note=text)


def _cycle(count: int) -> list[str]:
    return [TEXTS[i % len(TEXTS)] for i in range(count)]


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else str(n))
