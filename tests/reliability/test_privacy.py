"""The library is private to the account that owns it (storage/privacy.py): created 0700/0600
whatever the umask, tightened when found open (said once, in one line), refused when another
account owns it or a file in it; and another account can read neither the files nor the page
`serve` shows. Tests that need a second account run as root and act as `nobody` (uid 65534)
through setpriv, and skip elsewhere."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from photosearch.indexer import ipc
from photosearch.indexer.backend import LibraryBackend
from tests.daemon.conftest import draw, run_cli
from tests.web.conftest import serving

NOBODY = 65534
PRIVATE_FILES = ("library.sqlite", "library.sqlite-wal", "library.sqlite-shm", "vectors.faiss",
                 "vectors.faiss.json", "vectors.faiss.lock", "daemon.lock")


def modes(folder: Path) -> dict[str, int]:
    """Every entry under `folder` (itself as "."), with its permission bits."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(folder: Path) -> None:
    loose = {name: oct(mode) for name, mode in modes(folder).items() if mode & 0o077}
    assert not loose, f"open to other accounts: {loose}"


@pytest.fixture
def indexed(tmp_path, tiny_checkpoint):
    root, library = tmp_path / "photos", tmp_path / "lib"
    for i, colour in enumerate(("red", "blue", "green")):
        draw(root / f"{colour}.png", colour, "circle", variant=i)
    return root, library


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_a_new_library_is_private_whatever_the_umask(indexed, tiny_checkpoint, umask):
    root, library = indexed
    old = os.umask(umask)
    try:
        result = run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint)
        assert result.exit_code == 0, result.output
        with serving(LibraryBackend(library, tiny_checkpoint)) as client:  # makes a thumbnail
            hits = client.json("/api/search?q=red&k=1")[1]["results"]
            assert client.get(hits[0]["thumb"])[0] == 200
        server = ipc.SocketServer(library, lambda request: {})
        with server:
            assert stat.S_IMODE((library / "daemon.sock").lstat().st_mode) == 0o600
    finally:
        os.umask(old)
    found = modes(library)
    assert found["."] == 0o700
    assert found["thumbnails"] == 0o700 and any(name.startswith("thumbnails/") for name in found)
    for name in PRIVATE_FILES:
        if name in found:
            assert found[name] == 0o600, (name, oct(found[name]))
    assert {"library.sqlite", "vectors.faiss"} <= set(found)
    assert_private(library)


def test_a_library_left_open_is_tightened_and_said_once(indexed, tiny_checkpoint):
    root, library = indexed
    assert run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint).exit_code == 0
    library.chmod(0o777)
    for path in library.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o666)
    first = run_cli("--library", library, "status", "--checkpoint", tiny_checkpoint)
    assert first.exit_code == 0, first.output
    notes = [line for line in first.stderr.splitlines() if "private" in line]
    assert len(notes) == 1 and str(library) in notes[0] and "open to other accounts" in notes[0], first.stderr
    assert_private(library)
    again = run_cli("--library", library, "status", "--checkpoint", tiny_checkpoint)
    assert again.exit_code == 0 and "private" not in again.stderr, again.stderr


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand a folder to another account (chown)")


@pytest.mark.parametrize("foreign", [".", "daemon.sock", "daemon.lock", "library.sqlite"])
@pytest.mark.parametrize("command", ["query", "status", "index", "watch", "serve"])
def test_a_library_another_account_owns_is_refused(indexed, tiny_checkpoint, foreign, command):
    need_root()
    root, library = indexed
    assert run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint).exit_code == 0
    if foreign == "daemon.sock":  # a socket planted by another account: it would answer our queries
        planted = socket.socket(socket.AF_UNIX)
        planted.bind(str(library / "daemon.sock"))
        planted.listen()
    target = library / foreign
    target.touch(exist_ok=True)
    os.chown(target, NOBODY, NOBODY)
    before = modes(library)
    args = {"query": ["query", "red"], "status": ["status"], "index": ["index", root],
            "watch": ["watch", root], "serve": ["serve", "--port", "0"]}[command]
    result = run_cli("--library", library, *args, "--checkpoint", tiny_checkpoint)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "belongs to another account" in lines[0] and str(library) in lines[0], lines
    assert modes(library) == before  # nothing touched in a folder that is not ours
    if foreign == "daemon.sock":
        planted.close()


def as_nobody(tmp_path: Path) -> list[str]:
    """The prefix that runs a command as uid/gid 65534 without root's capabilities, or skip."""
    need_root()
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv to run a command as another account")
    prefix = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
              "--inh-caps=-all", "--bounding-set=-all"]
    if subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("setpriv cannot switch to uid 65534 here")
    return prefix


FETCH = """
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=dict(h.split(': ', 1) for h in sys.argv[2:])), timeout=20) as r:
        print(r.status, len(r.read()))
except urllib.error.HTTPError as e:
    print(e.code, 0)
"""


@pytest.fixture
def open_folder():
    """A folder every account can reach (tmp_path's parents are root's own, 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="photosearch-privacy-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_another_account_reads_neither_the_library_nor_the_page(indexed, tiny_checkpoint, tmp_path, open_folder):
    prefix = as_nobody(tmp_path)
    root, library = indexed[0], open_folder / "lib"
    control = open_folder / "readable.txt"
    control.write_text("anyone")
    control.chmod(0o644)
    seen = subprocess.run([*prefix, "cat", str(control)], capture_output=True, text=True)
    assert seen.stdout == "anyone", "the other account must reach the folder for this test to mean anything"
    assert run_cli("--library", library, "index", root, "--checkpoint", tiny_checkpoint).exit_code == 0
    for name in ("library.sqlite", "vectors.faiss"):
        copied = subprocess.run([*prefix, "cat", str(library / name)], capture_output=True)
        assert copied.returncode != 0 and not copied.stdout, name
    with serving(LibraryBackend(library, tiny_checkpoint)) as client:
        photo = client.json("/api/search?q=red&k=1")[1]["results"][0]["photo"]
        assert client.get(photo)[0] == 200  # the owner, with the cookie the printed link gave
        for path, headers in ((photo, []), ("/api/status", []), ("/", []),
                              (photo, [f"Cookie: photosearch-{client.port}=guessed"]),
                              (photo + "?token=guessed", [])):
            seen = subprocess.run([*prefix, sys.executable, "-c", FETCH, client.base.rstrip("/") + path, *headers],
                                  capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
            assert seen.stdout.split()[:1] == ["403"], (path, seen.stdout, seen.stderr)
        # Control: what refused them was the token, not the network or the Host header.
        seen = subprocess.run([*prefix, sys.executable, "-c", FETCH, f"{client.base}api/status?token={client.token}"],
                              capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
        assert seen.stdout.split()[:1] == ["200"], seen
