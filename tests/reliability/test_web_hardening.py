"""`photosearch serve` under attack and under load: the run's token on every request, the Host
allow-list on every bind (0.0.0.0, ::, 0, ::ffff:127.0.0.1), a burst of concurrent requests
all answered, idle connections dropped, photos streamed (never read whole), only indexed
photos served, and one model however many searches arrive at once."""

from __future__ import annotations

import html
import http.client
import os
import resource
import signal
import socket
import stat
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from photosearch.indexer import resources, web
from photosearch.indexer.backend import LibraryBackend
from photosearch.storage import Library
from tests.daemon.conftest import draw, photosearch_command, run_cli, subprocess_env
from tests.web.conftest import Client, serving


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_checkpoint):
    base = tmp_path_factory.mktemp("hardening")
    root, lib = base / "photos", base / "lib"
    for i, colour in enumerate(("red", "blue", "green", "yellow")):
        draw(root / f"{colour}.png", colour, "square", variant=i)
    (root / "broken.jpg").write_text("not a photo")
    big = draw(root / "big.png", "red", "circle", variant=9)
    with open(big, "r+b") as fh:  # 300 MB: a decoder stops at IEND, the file server must not read it all
        fh.truncate(300 << 20)
    result = run_cli("--library", lib, "index", root, "--checkpoint", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    return {"root": root, "lib": lib, "ckpt": tiny_checkpoint, "big": big}


def photo_id(library, name: str) -> int:
    with Library.open(library["lib"], read_only=True) as lib:
        return lib.get_by_path(str(library["root"] / name)).id


def raw_get(host: str, port: int, path: str, headers: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()


# -- the token ---------------------------------------------------------------------------------
def test_every_route_needs_the_runs_token(library):
    with serving(LibraryBackend(library["lib"], library["ckpt"])) as client:
        some_id = photo_id(library, "red.png")
        routes = ["/", "/app.js", "/api/status", "/api/search?q=red", f"/api/similar?id={some_id}",
                  "/api/browse", "/api/duplicates", "/api/duplicates?near=1", "/api/tags",
                  f"/thumb/{some_id}", f"/photo/{some_id}"]
        for path in routes:
            for cookie in ("", f"photosearch-{client.port}=wrong", f"photosearch-{client.port + 1}={client.token}"):
                status, _, body = client.get(path, headers={"Cookie": cookie})
                assert status == 403 and b"printed" in body, (path, cookie, status)
            assert client.get(path)[0] == 200, path  # with the cookie
            assert client.get(path + ("&" if "?" in path else "?") + f"token={client.token}",
                              headers={"Cookie": ""})[0] in (200, 303), path


def test_the_printed_link_sets_a_strict_httponly_cookie_and_drops_the_token(library):
    with serving(LibraryBackend(library["lib"], library["ckpt"])) as client:
        status, headers, _ = client.get(f"/?token={client.token}", headers={"Cookie": ""})
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert cookie.startswith(f"photosearch-{client.port}={client.token};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        second = web.make_server(LibraryBackend(library["lib"], library["ckpt"]), port=0)
        try:
            assert second.access.token != client.token  # drawn per run
        finally:
            second.server_close()
            second.backend.close()


# -- the Host allow-list on every bind ---------------------------------------------------------
@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "0", "::ffff:127.0.0.1", "127.0.0.1"])
def test_a_host_allow_list_holds_on_every_bind(library, bind):
    if ":" in bind and not socket.has_ipv6:
        pytest.skip("no IPv6")
    backend = LibraryBackend(library["lib"], library["ckpt"])
    try:
        server = web.make_server(backend, host=bind, port=0, allowed_hosts=["MyBox.lan"])
    except Exception as exc:  # an address family this machine lacks
        backend.close()
        pytest.skip(f"cannot bind {bind}: {exc}")
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        connect_to = "::1" if bind == "::" else "127.0.0.1"
        cookie = {"Cookie": f"photosearch-{port}={server.access.token}"}
        for host in ("evil.example", f"evil.example:{port}", "192.0.2.7", "[2001:db8::1]:80", "localhost.evil.example"):
            assert raw_get(connect_to, port, "/api/status", {**cookie, "Host": host})[0] == 403, (bind, host)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"mybox.lan:{port}", "127.0.0.2"):
            assert raw_get(connect_to, port, "/api/status", {**cookie, "Host": host})[0] == 200, (bind, host)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        backend.close()


def test_serve_help_says_how_to_allow_a_name():
    result = run_cli("serve", "--help")
    assert "--allow-host" in result.output and "Host" in result.output


# -- bursts, slow clients, big files -----------------------------------------------------------
def test_a_burst_of_concurrent_requests_is_all_answered(library):
    with serving(LibraryBackend(library["lib"], library["ckpt"])) as client:
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{client.port}"], capture_output=True, text=True)
        if listening.returncode == 0 and listening.stdout.split():
            assert int(listening.stdout.split()[2]) >= 128, listening.stdout  # Send-Q: the listen backlog
        start = threading.Barrier(50)

        def status(_):
            start.wait()
            return client.get("/api/status")[0]

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(status, range(50)))
    assert answers == [200] * 50


def test_an_idle_connection_is_dropped(library, monkeypatch):
    monkeypatch.setattr(web._Handler, "timeout", 0.5)
    with serving(LibraryBackend(library["lib"], library["ckpt"])) as client:
        idle = socket.create_connection((client.host, client.port), timeout=10)
        started = time.monotonic()
        try:
            assert idle.recv(1) == b""  # closed by the server, with nothing sent
        finally:
            idle.close()
        assert time.monotonic() - started < 5
        assert client.get("/api/status")[0] == 200  # the server itself is fine


def test_a_photo_is_streamed_not_read_whole(library):
    big_id = photo_id(library, "big.png")
    with serving(LibraryBackend(library["lib"], library["ckpt"])) as client:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        conn = http.client.HTTPConnection(client.host, client.port, timeout=60)
        conn.request("GET", f"/photo/{big_id}", headers={"Cookie": client.cookie})
        response = conn.getresponse()
        size = 0
        while chunk := response.read(1 << 20):
            size += len(chunk)
        conn.close()
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert response.status == 200 and size == os.path.getsize(library["big"]) == 300 << 20
    assert grown < 100 << 10, f"peak memory grew by {grown >> 10} MiB while serving a 300 MiB file"


def test_only_indexed_photos_are_served(library):
    broken = photo_id(library, "broken.jpg")
    with serving(LibraryBackend(library["lib"], library["ckpt"])) as client:
        for route in ("photo", "thumb"):
            status, _, body = client.get(f"/{route}/{broken}")
            assert status == 404 and b"not indexed (failed)" in body, body
        assert client.get(f"/api/similar?id={broken}")[0] in (400, 404)


def test_one_model_however_many_searches_arrive_at_once(library, monkeypatch):
    loads = []
    real = resources.load_query_model

    def counted(checkpoint):
        loads.append(threading.get_ident())
        return real(checkpoint)

    monkeypatch.setattr(resources, "load_query_model", counted)
    backend = LibraryBackend(library["lib"], library["ckpt"])  # cold: no warm_up
    with serving(backend) as client:
        start = threading.Barrier(60)

        def search(i):
            start.wait()
            return client.get(f"/api/search?q=red+square+{i}&k=3")[0]

        with ThreadPoolExecutor(60) as pool:
            answers = list(pool.map(search, range(60)))
    assert answers == [200] * 60
    assert len(loads) == 1, f"{len(loads)} model loads for 60 searches"


def test_serve_open_never_puts_the_token_on_a_command_line(library, tmp_path):
    recorded = tmp_path / "browser-args"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {recorded}\n')
    browser.chmod(0o755)
    args = [*photosearch_command(), "--library", str(library["lib"]), "serve", "--port", "0", "--open",
            "--checkpoint", str(library["ckpt"])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**subprocess_env(), "BROWSER": str(browser)})
    try:
        link = proc.stdout.readline().strip()
        token = link.split("token=", 1)[1]
        deadline = time.monotonic() + 60
        while not recorded.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        opened = recorded.read_text().split()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert len(opened) == 1 and opened[0].startswith("file://") and token not in opened[0], opened
    opener = urllib.parse.urlsplit(opened[0]).path
    assert stat.S_IMODE(os.stat(opener).st_mode) == 0o600 and html.escape(link) in open(opener).read()
