"""Paths are bytes, not text (issue 12, part 5), through the daemon: its socket speaks valid
JSON for a folder named `No\\xebl` (Latin-1), `query`/`similar` through it print the original
bytes under a strict UTF-8 locale, and `watch`'s log names the folder without a traceback."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess

from photosearch.indexer import ipc
from tests.daemon.conftest import DaemonProcess, draw, eventually, photosearch_command
from tests.undecodable import assert_clean, desktop_env, odd_name, photosearch


class DesktopDaemon(DaemonProcess):
    """`photosearch watch` under a strict UTF-8 locale (LANG=en_US.UTF-8)."""

    def start(self) -> DesktopDaemon:
        args = [*photosearch_command(), "--library", self.library, "watch", *self.roots,
                "--checkpoint", self.checkpoint, "--settle", "0.2", "--poll", "0.5"]
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([os.fsencode(str(a)) for a in args], stdout=subprocess.DEVNULL,
                                         stderr=log, env=desktop_env())
        return self

    def log_bytes(self) -> bytes:
        return self.log_path.read_bytes() if self.log_path.exists() else b""


def raw_request(library, payload: dict) -> dict:
    """One request on the socket; the reply line must be strict JSON (no lone surrogates)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(ipc.socket_path(library)))
        sock.sendall(json.dumps(payload).encode() + b"\n")
        line = sock.makefile("rb").readline()
    line.decode("utf-8")
    assert b"\\udc" not in line, line
    reply = json.loads(line)
    assert reply["ok"], reply
    return reply["result"]


def found(library, text: str) -> list[str]:
    """The daemon's result paths, or none while it says the library is empty (its folder was gone)."""
    try:
        return [h["path"] for h in ipc.request(library, {"op": "query", "text": text, "k": 10, "under": None})["results"]]
    except ipc.RemoteError:
        return []


def test_daemon_socket_query_similar_and_log_with_an_undecodable_folder(tmp_path, tiny_checkpoint):
    lib, odd = tmp_path / "lib", odd_name(tmp_path)  # the watched folder itself is No\xebl
    draw(odd / "red_circle.png", "red", "circle")
    draw(odd / "green_square.png", "green", "square", 1)
    draw(odd / "sub" / "blue_square.png", "blue", "square", 2)
    daemon = DesktopDaemon(lib, tiny_checkpoint, [odd], tmp_path / "daemon.log").start()
    try:
        daemon.wait_ready()
        daemon.wait_scanned()
        odd_bytes = os.fsencode(odd)
        # the raw wire: readable text plus exact base64 bytes, both ways
        result = raw_request(lib, {"op": "query", "text": "red circle", "k": 5, "under": None})
        exact = {base64.b64decode(h["path_bytes"]) for h in result["results"]}
        assert exact == {odd_bytes + n for n in (b"/red_circle.png", b"/green_square.png", b"/sub/blue_square.png")}
        target = os.fsencode(odd / "red_circle.png")
        result = raw_request(lib, {"op": "similar", "path": "ignored", "k": 5, "under": None,
                                   "path_bytes": base64.b64encode(target).decode()})
        assert odd_bytes + b"/green_square.png" in {base64.b64decode(h["path_bytes"]) for h in result["results"]
                                                    if "path_bytes" in h}
        # the Python client gets the original names back
        assert str(odd / "green_square.png") in [h["path"] for h in ipc.request(
            lib, {"op": "similar", "path": str(odd / "red_circle.png"), "k": 5, "under": str(odd)})["results"]]
        # the CLI through the daemon, under a strict UTF-8 locale
        env = desktop_env()
        query = photosearch(env, "--library", lib, "query", "red circle", "--checkpoint", tiny_checkpoint)
        assert_clean(query)
        assert odd_bytes + b"/red_circle.png (score: " in query.stdout
        similar = photosearch(env, "--library", lib, "similar", odd / "red_circle.png", "--paths-only",
                              "--in", odd / "sub", "--checkpoint", tiny_checkpoint)
        assert_clean(similar)
        assert similar.stdout == odd_bytes + b"/sub/blue_square.png\n"
        status = photosearch(env, "--library", lib, "status", "--json", "--checkpoint", tiny_checkpoint)
        assert_clean(status)
        assert json.loads(status.stdout)["daemon"]["running"]
        # the log names the folder by its bytes when it goes and comes back
        os.rename(odd, tmp_path / "elsewhere")
        eventually(lambda: odd_bytes + b" is gone" in daemon.log_bytes(), 30, "the 'gone' log line")
        os.rename(tmp_path / "elsewhere", odd)
        draw(odd / "blue_circle.png", "blue", "circle", 3)
        eventually(lambda: str(odd / "blue_circle.png") in found(lib, "blue circle"), 30, "the new photo")
        daemon.check_alive()
        assert b"Traceback" not in daemon.log_bytes() and b"UnicodeEncodeError" not in daemon.log_bytes()
    finally:
        daemon.stop()
