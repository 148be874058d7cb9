"""The vector store on a library that changes (issue 17), through storage's own API.

    .venv/bin/python -m benchmarks.churn --sizes 100k,1M          # every part, each size
    .venv/bin/python -m benchmarks.churn --sizes 100k --only bytes  # one part

For each size N, on a copy of the synthetic library (`benchmarks.libraries`: vectors around
real photo embeddings, queries the bundled photos' captions):
- rebuild: a fresh process opens the copy for writing with its index file deleted; its peak
  RSS (VmHWM) above its RSS before the open, against the vectors' bytes (N x D x 4);
- warm queries in-process (`Library.search`, k 10) before and after 3% of the photos are
  deleted and another 3% re-embedded (commits of 500, no save in between): p50/p95 and
  recall@10 against exact search over the vectors SQLite holds at that moment;
- queries while a second thread saves the index again and again (what the daemon's scanner
  or watcher thread does while its socket thread answers): p50/p95/max of those queries;
- cold `photosearch query` (a fresh process, no daemon) right after a writer process was
  killed with SIGKILL in the middle of committing edits, so the index file is behind;
- bytes (`--only bytes`, at the first size): a library filled from empty at the scanner's
  cadence (commits of 32 photos, `save_index_if_due` every 20 of them, `close` at the end):
  bytes this process wrote (/proc/self/io) against the library folder's final size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.libraries import PHOTO_ROOT, synthetic_library
from benchmarks.models import benchmark_checkpoint, photosearch_command, process_env
from benchmarks.photo_vectors import real_photo_vectors, text_queries
from benchmarks.report import Report, fmt_ms, percentiles_ms

PARTS = ("rebuild", "churn", "cold", "bytes")
CHURN = 0.03  # deleted, and again re-embedded, fraction of the photos
REBUILD = """
import json, sys, time
from benchmarks.models import proc_status
from photosearch.storage import Library
import faiss, numpy, sqlalchemy.orm
before = proc_status(0 if False else __import__("os").getpid())["VmRSS"]
started = time.perf_counter()
with Library.open(sys.argv[1]) as lib:
    seconds = time.perf_counter() - started
    stats = lib.stats()
status = proc_status(__import__("os").getpid())
print(json.dumps({"before": before, "hwm": status["VmHWM"], "seconds": seconds, "repair": stats["index_repair"],
                  "kind": stats["index_type"], "vectors": stats["vectors"], "dim": stats["dim"]}))
"""
WRITER = """
import sys
import numpy as np
from photosearch.storage import Library
lib = Library.open(sys.argv[1])
ids, _ = lib.ids_and_vectors()
rng = np.random.default_rng(5)
dim = lib.stats()["dim"]
for round in range(1000):  # edits, 200 a commit, until killed
    chosen = rng.choice(ids, 200, replace=False)
    fresh = rng.standard_normal((200, dim)).astype(np.float32)
    lib.set_vectors(dict(zip(chosen.tolist(), fresh)))
    print("committed", round, flush=True)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.churn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1M")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts ({', '.join(PARTS)})")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-benchmarks")
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args(argv)
    from benchmarks import machine
    from benchmarks.run import parse_size

    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    checkpoint, _ = benchmark_checkpoint(args.work_dir, False, args.checkpoint)
    source = real_photo_vectors(checkpoint, args.work_dir, False, None, None, log)
    report = Report(machine.describe())
    report.notes.append("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    report.notes.append(f"library vectors: around {source.origin}; queries: captions of the bundled photos")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if "bytes" in parts:
        bytes_written(report, args.work_dir / f"bytes-{sizes[0]}", sizes[0], source)
    for n in sizes:
        library, _ = synthetic_library(args.work_dir, n, source, log)
        scratch = args.work_dir / f"churn-{n}"
        log(f"copying the {n:,}-photo library to {scratch}")
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(library, scratch)
        if "rebuild" in parts:
            rebuild(report, scratch, n)
        if "churn" in parts:
            churn(report, scratch, n, source, text_queries(checkpoint, args.queries)[1])
        if "cold" in parts:
            cold_after_a_killed_writer(report, scratch, n, checkpoint)
    report.notes.append("load average at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(report.table())
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rebuild(report: Report, folder: Path, n: int) -> None:
    for name in ("vectors.faiss", "vectors.faiss.json"):
        (folder / name).unlink(missing_ok=True)
    log(f"rebuilding the index of {n:,} vectors in a fresh process")
    out = subprocess.run([sys.executable, "-c", REBUILD, str(folder)], capture_output=True, text=True,
                         env=process_env(), cwd=Path(__file__).resolve().parent.parent, timeout=7200)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    got = json.loads(out.stdout.strip().splitlines()[-1])
    vector_bytes = got["vectors"] * got["dim"] * 4
    extra = got["hwm"] - got["before"]
    report.add("rebuild", f"{_size(n)}: peak RSS of a rebuild ({got['kind']}) above the process before it",
               f"{extra / 2**20:,.0f} MiB = {extra / vector_bytes:.2f}x the vectors", "<= 1.3x", extra <= 1.3 * vector_bytes,
               note=f"vectors {vector_bytes / 2**20:,.0f} MiB; process before the open {got['before'] / 2**20:.0f} MiB; "
                    f"open + rebuild + save {got['seconds']:.0f} s ({got['repair']})", number=extra / vector_bytes)


def churn(report: Report, folder: Path, n: int, source, queries: np.ndarray) -> None:
    from photosearch.storage import Library, recall_at_k

    with Library.open(folder) as lib:
        kind = lib.stats()["index_type"]
        _timed_queries(report, lib, queries, f"{_size(n)} ({kind}), insert-only")
        ids, _ = lib.ids_and_vectors()
        rng = np.random.default_rng(17)
        picked = rng.permutation(ids)[: 2 * int(CHURN * n)]
        deleted, edited = picked[: len(picked) // 2], picked[len(picked) // 2 :]
        started = time.perf_counter()
        for start in range(0, len(deleted), 500):
            with lib.transaction():
                for pid in deleted[start : start + 500].tolist():
                    lib.remove(pid)
        fresh = np.concatenate([v for _, v in source.chunks(len(edited), seed=99)])
        for start in range(0, len(edited), 500):
            lib.set_vectors(dict(zip(edited[start : start + 500].tolist(), fresh[start : start + 500])))
        churn_s = time.perf_counter() - started
        report.add("churn", f"{_size(n)}: delete {len(deleted):,} photos, re-embed {len(edited):,}", f"{churn_s:.1f} s",
                   note="commits of 500 through Library.remove / set_vectors, index applied in place")
        found = _timed_queries(report, lib, queries, f"{_size(n)} ({kind}), after 3% deleted + 3% re-embedded",
                               target=15.0 if n >= 1_000_000 else 10.0)
        ids, vectors = lib.ids_and_vectors()
        exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
        del vectors
        recall = recall_at_k(found, exact)
        report.add("churn", f"{_size(n)} ({kind}): recall@10 vs exact, after the churn", f"{recall:.3f}", ">= 0.99",
                   recall >= 0.99, note=f"{len(queries)} caption queries; exact = every vector SQLite holds",
                   number=recall)
        if kind == "ivf":
            _probe_sweep(report, lib, queries, exact, n)
        _queries_while_saving(report, lib, queries, n)


def _probe_sweep(report: Report, lib, queries: np.ndarray, exact: np.ndarray, n: int) -> None:
    """Recall and latency at other nprobe values than the default, on the same churned index."""
    from dataclasses import replace

    from photosearch.storage import recall_at_k

    index = lib._vectors.index  # the benchmark's one reach inside: nprobe per run, not per library
    default = index.config
    try:
        for nprobe in sorted({default.ivf_nprobe // 2, default.ivf_nprobe * 3 // 4, default.ivf_nprobe,
                              default.ivf_nprobe * 3 // 2, default.ivf_nprobe * 2}):
            index.config = replace(default, ivf_nprobe=nprobe)
            sweep = Report("")
            found = _timed_queries(sweep, lib, queries, "sweep")
            report.add("churn", f"{_size(n)} (ivf): nprobe {nprobe} of {index.faiss_index.nlist} lists",
                       f"recall@10 {recall_at_k(found, exact):.3f}, {sweep.rows[0].value}",
                       note="default" if nprobe == default.ivf_nprobe else "")
    finally:
        index.config = default


def _timed_queries(report: Report, lib, queries: np.ndarray, label: str, target: float | None = None) -> np.ndarray:
    lib.search(queries[0], 10)
    seconds, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = lib.search(query, 10)
        seconds.append(time.perf_counter() - started)
        found.append([h.photo.id for h in hits] + [-1] * (10 - len(hits)))
    p50, p95 = percentiles_ms(seconds)
    met = None if target is None else (p50 <= target and p95 <= 40.0)
    report.add("churn", f"{label}: warm Library.search", fmt_ms(p50, p95),
               "" if target is None else f"p50 <= {target:g}, p95 <= 40 ms", met,
               note=f"{len(queries)} queries, k 10, one thread", number=p50)
    return np.asarray(found)


def _queries_while_saving(report: Report, lib, queries: np.ndarray, n: int) -> None:
    saving, saves = threading.Event(), []

    def save_again() -> None:
        while saving.is_set():
            started = time.perf_counter()
            lib.save_index()
            saves.append(time.perf_counter() - started)

    saving.set()
    saver = threading.Thread(target=save_again)
    saver.start()
    seconds, deadline, i = [], time.monotonic() + max(20.0, 0.0), 0
    while time.monotonic() < deadline or len(saves) < 2:
        started = time.perf_counter()
        lib.search(queries[i % len(queries)], 10)
        seconds.append(time.perf_counter() - started)
        i += 1
    saving.clear()
    saver.join()
    p50, p95 = percentiles_ms(seconds)
    report.add("churn", f"{_size(n)}: warm Library.search while another thread saves", fmt_ms(p50, p95), "p95 <= 50 ms",
               p95 <= 50.0, note=f"{len(seconds)} queries during {len(saves)} saves of {np.median(saves):.1f} s "
                                 f"each (median); slowest query {max(seconds) * 1e3:.0f} ms", number=p95)


def cold_after_a_killed_writer(report: Report, folder: Path, n: int, checkpoint: Path) -> None:
    env = process_env()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        for _ in range(3):  # a few commits in, then SIGKILL
            line = writer.stdout.readline()
            if not line:
                raise RuntimeError("the writer process died before committing")
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    seconds, warnings = [], set()
    for text in ("white chair", "dog on a beach", "sunset over the sea"):
        started = time.perf_counter()
        out = subprocess.run([*photosearch_command(), "--library", str(folder), "query", text, "-k", "10",
                              "--checkpoint", str(checkpoint)], capture_output=True, text=True, env=env, timeout=600)
        seconds.append(time.perf_counter() - started)
        if out.returncode or len(out.stdout.splitlines()) != 10:
            raise RuntimeError(f"photosearch query failed ({out.returncode}): {out.stderr[-1000:]}")
        warnings.update(line for line in out.stderr.splitlines() if line.startswith("warning:"))
    p50 = float(np.median(seconds))
    report.add("cold", f"{_size(n)}: cold `photosearch query` right after a writer was killed mid-way",
               f"p50 {p50:.2f} s (max {max(seconds):.2f} s)", "<= 1.5 s", p50 <= 1.5,
               note=f"3 fresh processes, no daemon, file cache warm; stderr: {' | '.join(sorted(warnings)) or 'no warning'}",
               number=p50)


def bytes_written(report: Report, folder: Path, n: int, source) -> None:
    from photosearch.storage import Library, PhotoRecord

    shutil.rmtree(folder, ignore_errors=True)
    log(f"filling {n:,} photos from empty at the scanner's cadence into {folder}")
    before, saves, started = _io(), 0, time.perf_counter()
    with Library.open(folder) as lib:
        batches = 0
        for start, vectors in source.chunks(n, seed=3):
            for at in range(0, len(vectors), 32):
                records = [PhotoRecord(path=f"{PHOTO_ROOT}/{(start + at + i) // 1000:04d}/IMG_{start + at + i:07d}.jpg",
                                       size=3_000_000, mtime=1.7e9, fingerprint=f"bytes-{start + at + i}")
                           for i in range(min(32, len(vectors) - at))]
                with lib.transaction():
                    ids = lib.add_photos(records)
                    lib.set_vectors(dict(zip(ids, vectors[at : at + len(records)])))
                batches += 1
                if batches % 20 == 0:
                    saves += lib.save_index_if_due()
    after, seconds = _io(), time.perf_counter() - started
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    written = after["wchar"] - before["wchar"]
    report.add("bytes", f"{_size(n)}: bytes written while indexing from empty / final library size",
               f"{written / size:.2f}x", "<= 3x", written / size <= 3,
               note=f"{written / 2**20:,.0f} MiB written (write calls; {(after['write_bytes'] - before['write_bytes']) / 2**20:,.0f} "
                    f"MiB reached the disk), library {size / 2**20:,.0f} MiB; {saves + 1} index saves; {seconds:.0f} s",
               number=written / size)
    shutil.rmtree(folder, ignore_errors=True)


def _io() -> dict[str, int]:
    with open("/proc/self/io") as fh:
        return {key: int(value) for key, value in (line.split(":") for line in fh)}


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


if __name__ == "__main__":
    sys.exit(main())
