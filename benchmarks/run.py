"""Run the benchmarks and print one table (with the machine it ran on).

    .venv/bin/python -m benchmarks.run                  # everything (see benchmarks/README.md)
    .venv/bin/python -m benchmarks.run --quick          # smoke run on tiny inputs, seconds
    .venv/bin/python -m benchmarks.run --only query --sizes 10k,100k

Generated photos, libraries and checkpoints go to --work-dir (default: a folder in the system's
temporary directory), never into the repository; libraries and photo sets are reused by later
runs because a million-photo library takes minutes to fill. Progress goes to stderr, the table
to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

SECTIONS = ("indexing", "query", "training")


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny inputs and a tiny model: checks the benchmarks run")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where generated photos and libraries go (default: $TMPDIR/photosearch-benchmarks)")
    parser.add_argument("--checkpoint", default=None,
                        help="model to time (default: the shipped one, else an untrained default-preset model)")
    parser.add_argument("--sizes", default="10k,100k,1M", help="library sizes for query latency")
    parser.add_argument("--photos-12mp", type=int, default=120, help="12 MP photos to index")
    parser.add_argument("--photos-2mp", type=int, default=120, help="2 MP photos to index")
    parser.add_argument("--flickr8k", type=Path, default=None, help="Flickr8k folder (train.json, dev.json, images/)")
    parser.add_argument("--feature-cache", type=Path, default=None,
                        help="feature cache for training (default: photosearch's, as `photosearch train` uses)")
    parser.add_argument("--train-batch-sizes", default="32,256", help="batch sizes to time an epoch at")
    parser.add_argument("--train-threads", default=None,
                        help="torch thread counts to time epochs at (default: torch's default, and 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    work = args.work_dir or Path(tempfile.gettempdir()) / ("photosearch-benchmarks" + ("-quick" if args.quick else ""))
    work.mkdir(parents=True, exist_ok=True)

    from benchmarks import machine
    from benchmarks.models import benchmark_checkpoint, checkpoint_summary
    from benchmarks.report import Report

    checkpoint, chosen = benchmark_checkpoint(work, args.quick, args.checkpoint)
    report = Report(machine.describe())
    report.notes.append(f"model: {checkpoint_summary(checkpoint)}; {chosen}")
    report.notes.append(f"work folder: {work}")
    report.notes.append("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
                        + " (other processes share the CPUs: compare rows from the same run)")
    started = time.perf_counter()
    for section in sections:
        try:
            _run_section(section, report, checkpoint, work, args)
        except Exception as exc:  # noqa: BLE001 - one failed section must not hide the others
            traceback.print_exc(file=sys.stderr)
            report.skip(section, "(section failed)", f"{type(exc).__name__}: {exc}"[:160])
    report.notes.append(f"benchmark wall time {time.perf_counter() - started:.0f} s; load average at the end: "
                        + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(report.table())
    if args.json:
        args.json.write_text(report.to_json())
    return 0


def _run_section(section: str, report, checkpoint: Path, work: Path, args) -> None:
    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if section == "indexing":
        from benchmarks import indexing

        indexing.run(report, checkpoint, work, args.quick, args.photos_12mp, args.photos_2mp)
    elif section == "query":
        from benchmarks import queries

        sizes = [1000] if args.quick else [parse_size(s) for s in args.sizes.split(",") if s.strip()]
        queries.run(report, checkpoint, work, args.quick, sizes, args.flickr8k, args.feature_cache, log)
    elif section == "training":
        from benchmarks import training

        batch_sizes = [8] if args.quick else [int(b) for b in args.train_batch_sizes.split(",")]
        threads = [int(t) for t in args.train_threads.split(",")] if args.train_threads else None
        training.run(report, work, args.quick, args.flickr8k, args.feature_cache, batch_sizes, threads, log)


if __name__ == "__main__":
    sys.exit(main())
