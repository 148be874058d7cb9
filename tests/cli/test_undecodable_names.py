"""Paths are bytes, not text (issue 12, part 5): a folder whose name is not valid UTF-8
(`No\\xebl`, Latin-1) through index, query, similar and status, plain and --json, under a strict
UTF-8 locale; and `-0/--null` output that is right for names holding newlines or spaces."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess

import pytest

from photosearch.indexer.path_json import from_json, to_json
from tests.daemon.conftest import draw, photosearch_command
from tests.undecodable import ODD, assert_clean, c_utf8_env, desktop_env, odd_name, photosearch


@pytest.fixture(scope="module")
def odd_library(tmp_path_factory, tiny_checkpoint):
    base = tmp_path_factory.mktemp("odd")
    root, lib = base / "photos", base / "lib"
    odd = odd_name(root)
    draw(odd / "red_circle.png", "red", "circle")
    draw(odd / "green_square.png", "green", "square", 1)
    draw(root / "blue_square.png", "blue", "square", 2)
    (odd / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return {"root": root, "odd": odd, "lib": lib, "ckpt": tiny_checkpoint}


def ps(lib, env, *args):
    return photosearch(env, "--library", lib["lib"], *args, "--checkpoint", lib["ckpt"])


def exact(entry: dict, key: str = "path") -> bytes:
    """The exact bytes a JSON object gives for `key`, asserting its text is valid Unicode."""
    text = entry[key]
    text.encode("utf-8")  # no lone surrogates: valid for any JSON consumer
    if f"{key}_bytes" in entry:
        return base64.b64decode(entry[f"{key}_bytes"])
    return text.encode("utf-8")


def test_path_json_round_trips_any_name():
    value = {"path": os.fsdecode(b"/p/" + ODD), "roots": ["/a", os.fsdecode(b"/\xff")], "n": 1,
             "results": [{"path": "/caf\u00e9", "name": os.fsdecode(ODD)}]}
    wire = json.dumps(to_json(value))
    assert "\\udc" not in wire and "path_bytes" in wire and "name_bytes" in wire
    assert json.loads(wire)["path"] == "/p/No\ufffdl" and json.loads(wire)["roots_bytes"][0] is None
    assert from_json(json.loads(wire)) == value


@pytest.mark.parametrize("env", [desktop_env, c_utf8_env], ids=["LANG=en_US.UTF-8", "LC_ALL=C.UTF-8"])
def test_index_query_similar_status_print_the_original_bytes(odd_library, env):
    env = env()
    lib, odd_bytes = odd_library, os.fsencode(odd_library["odd"])
    index = ps(lib, env, "index", lib["root"])
    assert_clean(index)
    assert odd_bytes + b"/broken.jpg" in index.stderr  # "failed: <path>: <reason>"
    query = ps(lib, env, "query", "red circle", "-k", "3")
    assert_clean(query)
    assert odd_bytes + b"/red_circle.png (score: " in query.stdout
    inside = ps(lib, env, "query", "square", "--in", lib["odd"], "--paths-only")
    assert_clean(inside)
    assert inside.stdout.splitlines() == [odd_bytes + b"/green_square.png", odd_bytes + b"/red_circle.png"] \
        or sorted(inside.stdout.splitlines()) == [odd_bytes + b"/green_square.png", odd_bytes + b"/red_circle.png"]
    similar = ps(lib, env, "similar", lib["odd"] / "red_circle.png", "--paths-only")
    assert_clean(similar)
    assert odd_bytes + b"/green_square.png" in similar.stdout.splitlines()
    status = ps(lib, env, "status")
    assert_clean(status)
    assert b"  failed: " + odd_bytes + b"/broken.jpg" in status.stdout


def test_json_output_is_valid_unicode_with_the_exact_bytes_beside(odd_library):
    env, lib, odd_bytes = desktop_env(), odd_library, os.fsencode(odd_library["odd"])
    index = ps(lib, env, "index", lib["root"], "--json")
    assert_clean(index)
    assert [exact(f) for f in json.loads(index.stdout)["failures"]] in ([], [odd_bytes + b"/broken.jpg"])
    query = ps(lib, env, "query", "red circle", "--in", lib["odd"], "--json")
    assert_clean(query)
    answer = json.loads(query.stdout)
    assert exact(answer, "under") == odd_bytes
    assert {exact(hit) for hit in answer["results"]} == {odd_bytes + b"/red_circle.png", odd_bytes + b"/green_square.png"}
    assert all("\ufffd" in hit["path"] for hit in answer["results"])
    similar = ps(lib, env, "similar", lib["odd"] / "red_circle.png", "--json")
    assert_clean(similar)
    assert odd_bytes + b"/green_square.png" in {exact(hit) for hit in json.loads(similar.stdout)["results"]}
    status = ps(lib, env, "status", "--json")
    assert_clean(status)
    report = json.loads(status.stdout)
    assert [exact(f) for f in report["failed"]] == [odd_bytes + b"/broken.jpg"]


NASTY = ["dog at the\nbeach.png", "two  spaces.png", " leading space.png", "quote's \"and\" tab\t.png"]


@pytest.mark.parametrize("command", ["query", "similar"])
def test_null_output_round_trips_through_xargs_0(tmp_path, tiny_checkpoint, command):
    root, lib = tmp_path / "photos", tmp_path / "lib"
    paths = [draw(root / name, "red", "circle", i) for i, name in enumerate(NASTY)]
    paths.append(draw(odd_name(root, b"caf\xe9\nnoir.png"), "blue", "square", 9))
    env = desktop_env()
    assert_clean(photosearch(env, "--library", lib, "index", root, "--checkpoint", tiny_checkpoint))
    what = ["query", "red circle"] if command == "query" else ["similar", str(paths[0])]
    for flag in ("-0", "--null"):
        args = " ".join(shlex.quote(a) for a in [*photosearch_command(), "--library", str(lib), *what, flag,
                                                  "--checkpoint", str(tiny_checkpoint)])
        listing = "import os, sys; sys.stdout.buffer.write(b'\\0'.join(map(os.fsencode, sys.argv[1:])))"
        piped = subprocess.run(["bash", "-c", f"set -o pipefail; {args} | xargs -0 python3 -c {shlex.quote(listing)}"],
                               env=env, capture_output=True, timeout=120)
        assert piped.returncode == 0, piped.stderr.decode(errors="replace")
        got = piped.stdout.split(b"\0")
        expected = {os.fsencode(p) for p in paths} - ({os.fsencode(paths[0])} if command == "similar" else set())
        assert set(got) == expected, got


def test_null_and_json_together_is_a_usage_error(odd_library):
    proc = ps(odd_library, desktop_env(), "query", "red", "-0", "--json")
    assert proc.returncode == 2 and b"--null" in proc.stderr and b"Traceback" not in proc.stderr


def test_errors_quote_names_by_their_bytes(odd_library):
    lib = odd_library
    missing = lib["odd"] / "not_indexed.png"
    missing.write_bytes(b"not a photo at all")  # a photo outside the library is embedded; this one cannot be
    try:
        proc = ps(lib, desktop_env(), "similar", missing)
    finally:
        missing.unlink()
    assert proc.returncode == 1 and b"Traceback" not in proc.stderr, proc.stderr
    assert os.fsencode(missing) in proc.stderr and proc.stderr.startswith(b"Error: "), proc.stderr
