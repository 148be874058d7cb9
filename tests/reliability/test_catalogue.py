"""The catalogue cannot drift: every test it names exists, so a renamed test shows up here
instead of as a silent "not run" in the summary."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.reliability.bad_files import GALLERY
from tests.reliability.catalogue import BAD_INPUT, CHECKS, KINDS

REPO = Path(__file__).resolve().parents[2]


def test_every_named_test_exists():
    missing = []
    for check in CHECKS:
        assert check.kind in KINDS, check
        for nodeid in check.tests:
            path, _, name = nodeid.partition("::")
            tree = ast.parse((REPO / path).read_text())
            functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            if name.partition("[")[0] not in functions:
                missing.append(nodeid)
    assert not missing, missing


def test_every_specimen_of_the_gallery_is_a_check():
    checked = {check.what for check in CHECKS if check.kind == BAD_INPUT}
    assert {specimen.name for specimen in GALLERY} <= checked
