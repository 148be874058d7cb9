"""Bursts against both servers (issue 15): how many clients are answered, and how fast.

    python -m benchmarks.bursts [--web 200] [--cli 300] [--pings 1000] [--searches 60]

(`--web 0` leaves out the web rows, `--cli 0` the daemon's.)

On the bundled demo photos, indexed with the shipped model into a fresh library:

- web: `--web` concurrent `GET /api/status` to `photosearch serve` (a real process, its token
  cookie sent), all released at once; then `--searches` concurrent `/api/search` on a freshly
  started (cold) server, with the number of "loading the model" lines in its log (one per
  model loaded) and its peak RSS (VmHWM);
- daemon: `--pings` rapid pings from 50 threads over the daemon's socket (`indexer.ipc.request`,
  a connection each), then `--cli` parallel `photosearch query` processes.

Each row: answered / sent, failures by their first words, and wall time. Prints a table; the
figures in benchmarks/README.md come from it.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from benchmarks.daemon_process import DaemonProcess
from benchmarks.machine import describe
from benchmarks.models import photosearch_command, proc_status, process_env, run_photosearch

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO / "examples" / "photos" / "images"
CHECKPOINT = REPO / "checkpoints" / "default.safetensors"


class Served:
    """`photosearch serve --port 0` as a process; `get(path)` with the cookie its link gives."""

    def __init__(self, library: Path, log: Path):
        self.library, self.log_path = library, log

    def __enter__(self) -> Served:
        args = [*photosearch_command(), "--library", str(self.library), "serve", "--port", "0",
                "--checkpoint", str(CHECKPOINT)]
        with open(self.log_path, "w") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=process_env(), text=True)
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(300):
                raise RuntimeError(f"serve did not start:\n{self.log_path.read_text()}")
        link = urlsplit(self.proc.stdout.readline().strip())
        self.host, self.port = link.hostname, link.port
        self.cookie = f"photosearch-{self.port}={parse_qs(link.query)['token'][0]}"
        return self

    def __exit__(self, *exc_info) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)

    def get(self, path: str) -> int:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.request("GET", path, headers={"Cookie": self.cookie})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


def burst(count: int, call, workers: int | None = None) -> dict:
    """`call(i)` for i < count from `workers` threads released together: answered, failures, seconds."""
    workers = workers or count
    start = threading.Barrier(workers)
    failures: collections.Counter = collections.Counter()

    def one(i):
        if i < workers:
            start.wait()
        try:
            return call(i)
        except Exception as exc:  # noqa: BLE001 - counted, by kind
            failures[f"{type(exc).__name__}: {' '.join(str(exc).split()[:6])}"] += 1
            return None

    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, range(count)))
    return {"sent": count, "answered": sum(r is not None and r is not False for r in results),
            "results": results, "failures": dict(failures), "seconds": time.perf_counter() - began}


def web_rows(library: Path, work: Path, requests: int, searches: int) -> list[tuple]:
    rows = []
    with Served(library, work / "serve-status.log") as served:
        served.get("/api/status")
        result = burst(requests, lambda i: served.get("/api/status") == 200 or None)
        rows.append((f"web: {requests} concurrent /api/status", result))
    with Served(library, work / "serve-search.log") as served:  # cold: no search has run
        result = burst(searches, lambda i: served.get(f"/api/search?q=a+dog+{i}&k=5") == 200 or None)
        loads = (work / "serve-search.log").read_text().count("loading the model")
        peak = proc_status(served.proc.pid).get("VmHWM", 0) >> 20
        rows.append((f"web: {searches} concurrent searches, cold server", result,
                     f"{loads} model load(s), peak RSS {peak} MiB"))
    return rows


def daemon_rows(library: Path, work: Path, pings: int, clients: int) -> list[tuple]:
    from photosearch.indexer import ipc

    rows = []
    with DaemonProcess(library, PHOTOS, CHECKPOINT, work / "daemon.log"):
        result = burst(pings, lambda i: ipc.request(library, {"op": "ping"}, timeout=60), workers=50)
        rows.append((f"daemon socket: {pings} rapid pings (50 threads)", result))

        def query(i):
            done = subprocess.run([*photosearch_command(), "--library", str(library), "query", "--json", "-k", "3",
                                   f"a dog {i}"], capture_output=True, text=True, env=process_env(), timeout=600)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
            return json.loads(done.stdout)["source"] == "daemon"

        result = burst(clients, query)
        rows.append((f"daemon: {clients} parallel `photosearch query` processes", result))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web", type=int, default=200, help="concurrent /api/status requests")
    parser.add_argument("--searches", type=int, default=60, help="concurrent searches on a cold server")
    parser.add_argument("--pings", type=int, default=1000, help="pings over the daemon socket")
    parser.add_argument("--cli", type=int, default=300, help="parallel `photosearch query` processes")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory(prefix="photosearch-bursts-") as tmp:
        work = Path(tmp)
        library = work / "lib"
        seconds, done = run_photosearch(["--library", library, "index", PHOTOS, "--checkpoint", CHECKPOINT])
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        rows = web_rows(library, work, args.web, args.searches) if args.web and args.searches else []
        rows += daemon_rows(library, work, args.pings, args.cli) if args.pings and args.cli else []
    print(f"{'burst':<58} {'answered':>10} {'seconds':>8}  notes")
    for name, result, *note in rows:
        failures = "; ".join(f"{n}x {kind}" for kind, n in result["failures"].items())
        print(f"{name:<58} {result['answered']:>5}/{result['sent']:<4} {result['seconds']:>8.1f}  "
              f"{' '.join(note)} {failures}".rstrip())


if __name__ == "__main__":
    main()
