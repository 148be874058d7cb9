"""Cold `photosearch query` (no daemon), one tree against another, interleaved in one run.

    .venv/bin/python -m benchmarks.cold_query --before-tree /tmp/ps-before OLD_LIB=NEW_LIB ...

Each pair is a library for the "before" tree's code and one for this tree's (a library upgraded
by this code cannot be read by older code, so copy it first and open the copy once with this
code). Every round runs `photosearch --library L query "a dog on the beach" -k 10` as a fresh
process with each tree's own venv (`TREE/.venv/bin/photosearch`), alternating, with
`PHOTOSEARCH_TRUST_INDEX=1` (synthetic libraries' photos have no files); prints the median and
minimum wall time and the load average. Plain script, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", help="OLD_LIBRARY=NEW_LIBRARY")
    parser.add_argument("--before-tree", required=True, type=Path, help="checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    trees = {"before": args.before_tree, "after": Path(__file__).resolve().parent.parent}
    env = {**os.environ, "PHOTOSEARCH_TRUST_INDEX": "1"}
    env.pop("PHOTOSEARCH_LIBRARY", None)
    for pair in args.pairs:
        old, new = pair.split("=")
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                started = time.perf_counter()
                done = subprocess.run([str(tree / ".venv/bin/photosearch"), "--library", old if name == "before" else new,
                                       "query", "a dog on the beach", "-k", "10"], capture_output=True, text=True, env=env)
                times[name].append(time.perf_counter() - started)
                if done.returncode != 0 or done.stdout.count("\n") != 10:
                    raise SystemExit(f"{name}: {done.stderr.strip()[-300:]}")
        load = os.getloadavg()[0]
        for name, seconds in times.items():
            print(f"{Path(new).name}: {name:6s} median {statistics.median(seconds):.3f} s, "
                  f"min {min(seconds):.3f} s (n={args.rounds}, load {load:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
