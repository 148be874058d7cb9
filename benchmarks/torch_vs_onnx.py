"""The torch serving path (an older tree) against this one's ONNX Runtime path, side by side.

    git worktree add /tmp/ps-torch 3c0a5dc        # the last commit that served with torch
    .venv/bin/python -m benchmarks.torch_vs_onnx --torch-tree /tmp/ps-torch [--rounds 3]

Every figure is a fresh process of the real CLI, old and new interleaved within each round:
- "old bf16": the tree's own `precision="auto"` (bfloat16 autocast where the CPU has native
  bf16, else float32); "old fp32": the same with `indexer.embedder.native_bf16` patched to
  return False, as on a CPU without native bf16; "new": this checkout's `photosearch`.
- rate: `index DIR --json` of the generated 12 MP photos, photos / the scan's own seconds;
- index 40: whole-process wall time of `index` of 40 of them (fresh library each time);
- cold query: `query TEXT --checkpoint C` with no daemon, on the 10k/100k libraries;
- embedder: the embedder alone in one process of each tree (64 of the photos): photos/s and
  its CPU time per photo, all threads (less disturbed by other processes than the rate);
- daemon to first photo: spawn of `watch` on a folder of 4 new photos (fresh library) until
  its log says the first scan is done (every photo embedded and committed);
- daemon RSS: VmHWM of `watch` holding the 10k/100k libraries, after start-up and 60 socket
  queries (their p50 is reported too). Libraries: benchmarks.libraries around the bundled photos' vectors.

The old tree's processes run with it as working directory and PYTHONPATH: its top-level
`cli`, `indexer`... would otherwise resolve to this checkout's folders of the same names. Old
and new read the same checkpoint bytes (compared by sha256 before anything runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.models import photosearch_command, process_env

WRAPPER = """import sys
tree, precision = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
import indexer
assert indexer.__file__.startswith(tree), 'not the old tree: ' + indexer.__file__
if precision == 'float32':
    import indexer.embedder as e
    e.native_bf16 = lambda: False
from cli.main import cli
cli()
"""
EMBED = """import glob, json, sys, time
if sys.argv[1] == 'new':
    from photosearch.indexer import service
    from photosearch.indexer.embedder import Embedder
    folder, n = sys.argv[2], int(sys.argv[3])
else:
    tree, precision, folder, n = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    import indexer.embedder as e
    assert e.__file__.startswith(tree), 'not the old tree: ' + e.__file__
    if precision == 'float32':
        e.native_bf16 = lambda: False
    from indexer import service
    Embedder = e.Embedder
paths = sorted(glob.glob(folder + '/*.jpg'))[:n]
with Embedder(service.load_model(None)) as embedder:
    embedder.embed_files(paths[:8])
    started, cpu = time.perf_counter(), time.process_time()
    vectors, errors = embedder.embed_files(paths)
    rate, cpu_ms = len(paths) / (time.perf_counter() - started), (time.process_time() - cpu) / len(paths) * 1e3
print(json.dumps({'rate': rate, 'cpu_ms': cpu_ms, 'errors': len(errors), 'precision': getattr(embedder, 'precision', 'onnx')}))
"""
TEXTS = ["white chair", "dog on a beach", "sunset over the sea", "a cat asleep on a sofa", "a city street at night"]


@dataclass
class Side:
    name: str
    command: list[str]
    env: dict
    cwd: str | None
    checkpoint: Path
    fingerprint: str  # what its libraries must carry

    def run(self, args: list, timeout: float = 900) -> tuple[float, subprocess.CompletedProcess]:
        started = time.perf_counter()
        out = subprocess.run([*self.command, *map(str, args)], capture_output=True, text=True, env=self.env,
                             cwd=self.cwd, timeout=timeout)
        wall = time.perf_counter() - started
        if out.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(map(str, args))} failed:\n{out.stderr[-1500:]}")
        return wall, out


def sides(tree: Path) -> list[Side]:
    from photosearch.indexer.resources import DEFAULT_CHECKPOINT, model_fingerprint
    from photosearch.miniclip.checkpoint_header import read_metadata

    old_ckpt = tree / "checkpoints" / "default.safetensors"
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (old_ckpt, DEFAULT_CHECKPOINT)}
    if len(digests) != 1:
        raise SystemExit(f"{old_ckpt} and {DEFAULT_CHECKPOINT} differ: the comparison needs the same weights")
    env = {k: v for k, v in os.environ.items() if k not in ("PHOTOSEARCH_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tree)
    old_fp = read_metadata(old_ckpt)["fingerprint"]
    old = [Side(f"old {p}", [sys.executable, "-c", WRAPPER, str(tree), p], env, str(tree), old_ckpt, old_fp)
           for p in ("bf16", "float32")]
    old[1].name = "old fp32"
    new = Side("new", photosearch_command(), process_env(), None, DEFAULT_CHECKPOINT, model_fingerprint(DEFAULT_CHECKPOINT))
    return [*old, new]


def _subset(photos, count: int, folder: Path) -> Path:
    """A folder holding hard links to the first `count` photos (made once)."""
    if not (folder / "done").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for path in photos.paths[:count]:
            os.link(path, folder / path.name)
        (folder / "done").touch()
    return folder


def _indexing(results: dict, side: Side, photos: Path, n: int, scratch: Path, key: str) -> None:
    library = scratch / f"lib-{key}"
    shutil.rmtree(library, ignore_errors=True)
    wall, out = side.run(["--library", library, "index", photos, "--checkpoint", side.checkpoint, "--json"])
    scan = json.loads(out.stdout)
    if scan["added"] != n:
        raise RuntimeError(f"{side.name} added {scan['added']} of {n}: {scan['failures'][:2]}")
    results.setdefault((key, "rate", side.name), []).append(n / scan["seconds"])
    results.setdefault((key, "wall", side.name), []).append(wall)
    shutil.rmtree(library, ignore_errors=True)


def _embedder(results: dict, side: Side, photos: Path, n: int) -> None:
    """The embedder alone, in one process of the side's tree: photos/s and CPU ms per photo (all
    threads): CPU time is what other processes on a shared machine disturb least."""
    args = ["new", photos, n] if side.name == "new" else ["old", *side.command[3:], photos, n]
    out = subprocess.run([sys.executable, "-c", EMBED, *map(str, args)], capture_output=True, text=True,
                         env=side.env, cwd=side.cwd, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{side.name}: embedder run failed:\n{out.stderr[-1500:]}")
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    results.setdefault(("embedder", "erate", side.name), []).append(answer["rate"])
    results.setdefault(("embedder", "cpu", side.name), []).append(answer["cpu_ms"])


def _first_photo(results: dict, side: Side, photos: Path, scratch: Path) -> None:
    library, log_path = scratch / "lib-daemon", scratch / "daemon.log"
    shutil.rmtree(library, ignore_errors=True)
    with open(log_path, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([*side.command, "--library", str(library), "watch", str(photos), "--checkpoint",
                                 str(side.checkpoint)], stdout=subprocess.DEVNULL, stderr=log, env=side.env, cwd=side.cwd)
    try:
        while "scan done" not in log_path.read_text():
            if proc.poll() is not None or time.perf_counter() - started > 300:
                raise RuntimeError(f"{side.name}: no first scan:\n{log_path.read_text()[-1500:]}")
            time.sleep(0.01)
        results.setdefault(("daemon", "first", side.name), []).append(time.perf_counter() - started)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(library, ignore_errors=True)


def _library_side(results: dict, side: Side, folder: Path, size: str, root: Path, scratch: Path) -> None:
    from benchmarks.daemon_process import DaemonProcess
    from photosearch.indexer import ipc
    from photosearch.indexer.resources import MODEL_META_KEY
    from photosearch.storage import Library

    with Library.open(folder) as lib:  # each tree's own model fingerprint, or it refuses the library
        lib.set_meta(MODEL_META_KEY, side.fingerprint)
    for text in TEXTS[:3]:
        wall, _ = side.run(["--library", folder, "query", text, "-k", "10", "--checkpoint", side.checkpoint])
        results.setdefault((size, "cold", side.name), []).append(wall)
    with DaemonProcess(folder, root, side.checkpoint, scratch / "daemon-lib.log", side.command, side.env,
                       side.cwd) as daemon:
        seconds = []
        for i in range(62):
            started = time.perf_counter()
            ipc.request(folder, {"op": "query", "text": TEXTS[i % len(TEXTS)], "k": 10})
            seconds.append(time.perf_counter() - started)
        results.setdefault((size, "warm", side.name), []).append(statistics.median(seconds[2:]) * 1e3)
        results.setdefault((size, "rss", side.name), []).append(daemon.memory()["VmHWM"] / 2**20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-tree", type=Path, required=True, help="a worktree of the torch-serving commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=160, help="12 MP photos for the rate")
    parser.add_argument("--sizes", default="10k,100k", help="library sizes for cold query and daemon RSS")
    parser.add_argument("--only", default="rate,index40,embedder,daemon,libraries")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-benchmarks")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))

    from benchmarks import machine
    from benchmarks.photos import photo_set
    from benchmarks.run import parse_size

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    everyone = sides(args.torch_tree.resolve())
    photos = photo_set(args.work_dir, 4000, 3000, args.photos)
    forty = _subset(photos, 40, args.work_dir / f"photos-4000x3000-first40-of-{args.photos}")
    four = _subset(photos, 4, args.work_dir / f"photos-4000x3000-first4-of-{args.photos}")
    scratch = args.work_dir / "torch-vs-onnx"
    scratch.mkdir(parents=True, exist_ok=True)
    libraries = []
    if "libraries" in only:
        libraries = _libraries(args.work_dir, [parse_size(s) for s in args.sizes.split(",")], log)
    root = args.work_dir / "empty-root"
    root.mkdir(exist_ok=True)
    started, load_start = time.perf_counter(), os.getloadavg()
    results: dict = {}
    for r in range(args.rounds):
        order = everyone if r % 2 == 0 else everyone[::-1]  # neither side always goes first
        for side in order:
            log(f"round {r + 1}: {side.name}")
            if "rate" in only:
                _indexing(results, side, photos.folder, args.photos, scratch, f"12mp x{args.photos}")
            if "index40" in only:
                _indexing(results, side, forty, 40, scratch, "index 40")
            if "embedder" in only:
                _embedder(results, side, photos.folder, 64)
            if "daemon" in only:
                _first_photo(results, side, four, scratch)
            for size, folder in libraries:
                if side.name != "old fp32":  # no photo is embedded there: precision plays no part
                    _library_side(results, side, folder, size, root, scratch)
    print(f"machine: {machine.describe()}")
    print(f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}, at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.rounds} rounds, {time.perf_counter() - started:.0f} s")
    print(f"{'figure':44} " + " ".join(f"{s.name:>24}" for s in everyone))
    for figure in sorted({k[:2] for k in results}, key=lambda k: list(results).index(k + (everyone[-1].name,))):
        cells = []
        for side in everyone:
            values = results.get(figure + (side.name,))
            cells.append(f"{_fmt(figure[1], values):>24}")
        print(f"{_label(figure):44} " + " ".join(cells))
    for (key, what, name), values in results.items():  # same-round ratios: the load changes between rounds
        if name == "new" and what in ("rate", "wall", "first", "cold", "rss", "erate", "cpu", "warm"):
            for old in (s.name for s in everyone[:-1]):
                if (key, what, old) in results:
                    ratios = [a / b for a, b in zip(values, results[(key, what, old)])]
                    print(f"  {_label((key, what))}: new / {old}, pairwise "
                          + ", ".join(f"{x:.2f}" for x in ratios) + f" (median {statistics.median(ratios):.2f})")
    if args.json:
        args.json.write_text(json.dumps([{"figure": k[0], "what": k[1], "side": k[2], "values": v}
                                         for k, v in results.items()], indent=1))
    return 0


def _libraries(work: Path, sizes: list[int], log) -> list[tuple[str, Path]]:
    from benchmarks.libraries import synthetic_library
    from benchmarks.photo_vectors import real_photo_vectors
    from photosearch.indexer.resources import DEFAULT_CHECKPOINT

    source = real_photo_vectors(DEFAULT_CHECKPOINT, work, False, Path("/nonexistent"), None, log)  # bundled photos
    return [(f"{n // 1000}k" if n % 1000 == 0 else str(n), synthetic_library(work, n, source, log)[0]) for n in sizes]


UNITS = {"rate": ("photos/s", 1, 1), "erate": ("photos/s", 1, 1), "cpu": ("ms", 1, 1), "wall": ("s", 1, 2), "first": ("s", 1, 2), "cold": ("s", 1, 2),
         "rss": ("MiB", 1, 0), "warm": ("ms", 1, 1)}


def _fmt(what: str, values: list[float] | None) -> str:
    if not values:
        return "-"
    unit, scale, digits = UNITS[what]
    med, lo, hi = (statistics.median(values) * scale, min(values) * scale, max(values) * scale)
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f}) {unit}"


def _label(figure: tuple[str, str]) -> str:
    key, what = figure
    return {"rate": f"{key} index rate (scan seconds)", "wall": f"{key}: whole process wall",
            "first": "daemon start to first scan done (4 photos)", "erate": "embedder in-process, 64 x 12 MP",
            "cpu": "embedder CPU time per 12 MP photo", "cold": f"{key}: cold query (no daemon)",
            "rss": f"{key}: daemon peak RSS (VmHWM)", "warm": f"{key}: warm query, socket p50 of 60"}[what]


if __name__ == "__main__":
    sys.exit(main())
