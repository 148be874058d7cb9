"""A burst of clients on the daemon's socket: every one answered. The server listens with the
system's largest queue; a client that finds the queue full anyway (EAGAIN) or the socket not
yet listening while a daemon holds the lock tries again with a growing pause; one that finds
a socket nobody serves gives up at once."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from photosearch.indexer import ipc
from photosearch.indexer.lock import LibraryLock
from tests.daemon.conftest import daemon_factory, draw, photosearch_command, subprocess_env  # noqa: F401


def test_fifty_concurrent_clients_are_all_answered(tmp_path):
    def slow(request):
        time.sleep(0.01)
        return {"echo": request["n"]}

    with ipc.SocketServer(tmp_path, slow):
        listening = subprocess.run(["ss", "-Hxl", "src", str(tmp_path / ipc.SOCKET_NAME)], capture_output=True, text=True)
        if listening.returncode == 0 and listening.stdout.split():
            assert int(listening.stdout.split()[3]) >= 128, listening.stdout  # Send-Q: the backlog
        start = threading.Barrier(50)

        def ask(n):
            start.wait()
            return ipc.request(tmp_path, {"op": "echo", "n": n})["echo"]

        with ThreadPoolExecutor(50) as pool:
            assert list(pool.map(ask, range(50))) == list(range(50))


def test_a_client_waits_for_a_daemon_whose_queue_is_full(tmp_path):
    path = tmp_path / ipc.SOCKET_NAME
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(0)
    fillers = []
    while True:  # fill the accept queue: the next connect gets EAGAIN
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        filler.setblocking(False)
        try:
            filler.connect(str(path))
        except BlockingIOError:
            filler.close()
            break
        fillers.append(filler)
        assert len(fillers) < 100

    def accept_later():
        time.sleep(0.5)
        server.settimeout(10)
        for _ in range(len(fillers) + 1):
            conn, _ = server.accept()
            with conn:
                conn.settimeout(0.5)
                try:
                    if conn.recv(1 << 16):
                        conn.sendall(json.dumps({"ok": True, "result": {"pong": 1}}).encode() + b"\n")
                except socket.timeout:
                    pass  # a filler: it never asks anything

    thread = threading.Thread(target=accept_later)
    thread.start()
    try:
        started = time.monotonic()
        assert ipc.request(tmp_path, {"op": "ping"}, timeout=10) == {"pong": 1}
        assert 0.4 < time.monotonic() - started < ipc.CONNECT_WAIT_S
    finally:
        for filler in fillers:
            filler.close()
        thread.join()
        server.close()


def test_a_socket_nobody_serves_is_given_up_at_once(tmp_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / ipc.SOCKET_NAME))  # as a killed daemon leaves it
    stale.close()
    started = time.monotonic()
    with pytest.raises(ipc.DaemonUnavailable):
        ipc.request(tmp_path, {"op": "ping"})
    assert time.monotonic() - started < 0.5


def test_a_client_waits_for_a_starting_daemon(tmp_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / ipc.SOCKET_NAME))
    stale.close()
    with LibraryLock(tmp_path, "watch"):  # a daemon holds the library and is about to listen

        def start_serving():
            time.sleep(0.4)
            server.start()

        server = ipc.SocketServer(tmp_path, lambda request: {"pong": 2})
        thread = threading.Thread(target=start_serving)
        thread.start()
        try:
            assert ipc.request(tmp_path, {"op": "ping"}) == {"pong": 2}
        finally:
            thread.join()
            server.stop()


CLIENTS = 40


def test_parallel_query_commands_are_all_answered_by_the_daemon(tmp_path, daemon_factory):  # noqa: F811
    root = tmp_path / "photos"
    for i, colour in enumerate(("red", "blue", "green")):
        draw(root / f"{colour}.png", colour, "circle", variant=i)
    daemon = daemon_factory([root]).start()
    daemon.wait_ready()
    daemon.wait_scanned()
    args = [*photosearch_command(), "--library", str(daemon.library), "query", "--json", "-k", "2", "red circle"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
             for _ in range(CLIENTS)]
    outcomes = [proc.communicate(timeout=300) + (proc.returncode,) for proc in procs]
    failed = [(code, err.decode()[-300:]) for out, err, code in outcomes if code != 0]
    assert not failed, failed
    sources = [json.loads(out)["source"] for out, _, _ in outcomes]
    assert sources == ["daemon"] * CLIENTS
    daemon.check_alive()
