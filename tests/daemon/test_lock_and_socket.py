"""The writer lock and the JSON-lines socket, in-process: fast, no model."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from photosearch.indexer import ipc
from photosearch.indexer.lock import LibraryLock, LockHeld, holder


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    with LibraryLock(tmp_path, "watch"):
        with pytest.raises(LockHeld) as held:
            LibraryLock(tmp_path, "index").acquire()
        assert (held.value.pid, held.value.command) == (os.getpid(), "watch")
        assert holder(tmp_path) == (os.getpid(), "watch")
    assert holder(tmp_path) is None
    with LibraryLock(tmp_path, "index"):  # free again
        pass


def test_lock_of_a_killed_process_is_free(tmp_path):
    code = f"from photosearch.indexer.lock import LibraryLock; LibraryLock({str(tmp_path)!r}, 'watch').acquire(); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert holder(tmp_path) is None  # the kernel dropped it with the process
    LibraryLock(tmp_path, "watch").acquire()


def echo_handler(request: dict) -> dict:
    if request.get("op") == "fail":
        raise ValueError("that went wrong")
    return {"echo": request}


def test_request_and_reply_over_a_private_socket(tmp_path):
    with ipc.SocketServer(tmp_path, echo_handler, log=lambda m: None) as server:
        assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
        assert ipc.request(tmp_path, {"op": "ping", "k": 3}) == {"echo": {"op": "ping", "k": 3}}
        with pytest.raises(ipc.RemoteError, match="that went wrong"):
            ipc.request(tmp_path, {"op": "fail"})
    assert not server.path.exists()
    with pytest.raises(ipc.DaemonUnavailable):
        ipc.request(tmp_path, {"op": "ping"})


def test_several_requests_on_one_connection_and_junk_gets_an_error(tmp_path):
    with ipc.SocketServer(tmp_path, echo_handler, log=lambda m: None) as server:
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(server.path))
            raw.sendall(b'{"op": "a"}\nnot json\n{"op": "b"}\n')
            replies = raw.makefile("rb")
            first, second, third = (json.loads(replies.readline()) for _ in range(3))
    assert first == {"ok": True, "result": {"echo": {"op": "a"}}}
    assert second["ok"] is False and "JSON" in second["error"]
    assert third == {"ok": True, "result": {"echo": {"op": "b"}}}


def test_stale_socket_is_replaced_and_long_paths_work(tmp_path):
    folder = tmp_path / ("x" * 60) / ("y" * 60)  # longer than AF_UNIX allows
    folder.mkdir(parents=True)
    (folder / ipc.SOCKET_NAME).write_text("left by a killed daemon")
    with pytest.raises(ipc.DaemonUnavailable):
        ipc.request(folder, {"op": "ping"})
    with ipc.SocketServer(folder, echo_handler, log=lambda m: None):
        assert ipc.request(folder, {"op": "ping"}) == {"echo": {"op": "ping"}}
    assert sorted(p.name for p in folder.iterdir()) == []  # no socket, no staging folder left
