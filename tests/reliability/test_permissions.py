"""A photo and a folder without read permission, scanned by a process that permissions
actually stop. The suite runs as root, and root reads everything; so the scan runs in a
subprocess that keeps uid 0 (it still owns tmp_path) but has lost the two capabilities that
let root ignore file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.storage import FAILED, INDEXED, Library
from tests.indexer.stand_ins import ColourModel, make_photo

REPO = Path(__file__).resolve().parents[2]
UNPRIVILEGED = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]

SCAN = """
import json, sys
from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.storage import Library
from tests.indexer.stand_ins import ColourModel

with Library.open(sys.argv[1]) as lib, Embedder(ColourModel(), workers=1) as embedder:
    report = Scanner(lib, embedder).scan([sys.argv[2]])
print(json.dumps({"failures": report.failures, "removed": report.removed}))
"""


def unprivileged_command(tmp_path: Path) -> list[str]:
    """The prefix that runs a command without root's way around file modes, or skip."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop the right to read everything")
    probe = tmp_path / "probe"
    probe.write_text("secret")
    probe.chmod(0)
    try:
        result = subprocess.run([*UNPRIVILEGED, "cat", str(probe)], capture_output=True, timeout=30)
    finally:
        probe.unlink()
    if result.returncode == 0:
        pytest.skip("dropping CAP_DAC_OVERRIDE did not stop root from reading (no CAP_SETPCAP?)")
    return UNPRIVILEGED


def test_a_file_and_a_folder_without_read_permission(tmp_path, ledger):
    prefix = unprivileged_command(tmp_path)
    root, library = tmp_path / "photos", tmp_path / "lib"
    make_photo(root / "ok.jpg", (10, 120, 10))
    locked = make_photo(root / "locked.jpg", (5, 5, 5))
    private = root / "private"
    inner = make_photo(private / "inner.jpg", (9, 9, 90))
    with Library.open(library) as lib, Embedder(ColourModel(), workers=1) as embedder:
        lib.add_root(root)
        Scanner(lib, embedder).scan()
    make_photo(locked, (200, 5, 5), size=(20, 20))  # changed: it has to be read again
    new_inside = make_photo(private / "new.jpg", (1, 2, 3))
    locked.chmod(0)
    private.chmod(0)
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        result = subprocess.run([*prefix, sys.executable, "-c", SCAN, str(library), str(root)],
                                capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    finally:
        locked.chmod(0o644)
        private.chmod(0o755)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    reasons = dict(outcome["failures"])
    assert reasons == {str(locked): "permission denied",
                       str(private): "cannot read folder: permission denied"}
    assert outcome["removed"] == 0  # what is behind the locked folder is not forgotten
    with Library.open(library) as lib, Embedder(ColourModel(), workers=1) as embedder:
        assert lib.get_by_path(str(locked)).status == FAILED
        assert lib.get_by_path(str(locked)).error == "permission denied"
        assert lib.get_by_path(str(inner)).status == INDEXED
        assert lib.get_by_path(str(new_inside)) is None
        report = Scanner(lib, embedder).scan()  # readable again: everything comes in
        assert (report.updated, report.added, report.failed) == (1, 1, 0), report
        ledger.assert_consistent(lib, expect=4)
