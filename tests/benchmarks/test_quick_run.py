"""The benchmark entry point runs end to end on tiny inputs and prints its table.

The benchmarks themselves live in benchmarks/ and are never collected by pytest; this only
proves `python -m benchmarks.run --quick` still works (tiny photos, a tiny untrained model,
a 1,000-vector library, a dozen training images).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
def test_quick_run_prints_one_table(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PHOTOSEARCH_LIBRARY"}
    env["OMP_NUM_THREADS"] = "1"  # two CPUs shared with the test process
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--work-dir", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("machine: ") and "cores" in lines[0] and "torch" in lines[0] and "faiss" in lines[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("section"))
    assert lines[header].split()[:5] == ["section", "metric", "value", "target", "ok"]
    rows = [line for line in lines[header + 2:] if line.strip() and not line.startswith("note:")]
    sections = {row.split()[0] for row in rows}
    assert sections == {"indexing", "query", "training", "memory"}, out.stdout
    assert "section failed" not in out.stdout, out.stdout + out.stderr[-3000:]
    assert any("photos/s" in row for row in rows) and any("p50" in row for row in rows)
    assert any("MiB" in row for row in rows)
