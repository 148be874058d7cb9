"""What the server refuses: paths from the request, files outside the library, foreign Host
headers; and what it survives: query strings of any length or content (never a 500)."""

from __future__ import annotations

import re
import socket
import threading
from urllib.parse import urlsplit

import pytest

from photosearch.indexer import web

TRAVERSALS = [
    "/photo/../../etc/passwd",
    "/thumb/../../../etc/passwd",
    "/photo/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/photo/%2E%2E/%2E%2E/etc/passwd",
    "/photo/..%2f..%2f..%2fetc%2fpasswd",
    "/photo/%252e%252e%252fetc%252fpasswd",
    "/photo//etc/passwd",
    "/photo/etc/passwd",
    "/thumb/-1",
    "/thumb/0",
    "/photo/1.0",
    "/photo/0x1",
    "/photo/%31",
    "/photo/1/../../etc/passwd",
    "/photo/1%00",
    "/thumb/" + "9" * 40,
    "/thumb/99999999",
    "/etc/passwd",
    "/app.js/../../../etc/passwd",
    "/web_assets/app.js",
    "/../indexer/web.py",
]


@pytest.mark.parametrize("raw_path", TRAVERSALS)
def test_paths_from_the_request_are_refused(client, raw_path):
    status, _, body = client.get(raw_path)
    assert status in (400, 404), (raw_path, status)
    assert b"root:" not in body


def test_absolute_paths_of_library_photos_are_refused(client, web_library):
    path = web_library["root"] / "red_circle.png"
    for raw_path in (f"/photo/{path}", f"/thumb/{path}", f"/photo{path}", "/api/similar?id=" + str(path)):
        assert client.get(raw_path)[0] in (400, 404), raw_path


def test_a_symlink_out_of_the_library_is_not_served(client, web_library):
    status, answer = client.json("/api/search?q=blue+square&k=100")
    link = [hit for hit in answer["results"] if hit["name"] == "link.png"]
    assert link, "the scanner indexes symlinked files; the server must still refuse to show this one"
    photo_id = link[0]["id"]
    for raw_path in (f"/photo/{photo_id}", f"/thumb/{photo_id}", f"/api/similar?id={photo_id}"):
        status, _, body = client.get(raw_path)
        assert status == 404, raw_path
        assert body != web_library["secret"].read_bytes()
    assert not list((web_library["lib"] / "thumbnails").glob(f"{photo_id}-*"))


def test_a_photo_gone_from_disk_is_not_found(client, web_library):
    extra = web_library["root"] / "red_square.png"
    hits = client.json("/api/search?q=red&k=100")[1]["results"]
    photo_id = {hit["name"]: hit["id"] for hit in hits}["red_square.png"]
    saved = extra.read_bytes()
    extra.unlink()
    try:
        assert client.get(f"/photo/{photo_id}")[0] == 404
    finally:
        extra.write_bytes(saved)


GARBAGE = [
    "q=" + "a" * (web.MAX_QUERY_CHARS + 1),
    "q=" + "word+" * 5000,
    "q=%zz", "q=%", "q=abc%2", "q=%FF%FE", "q=%ED%A0%80", "q=%C0%AF",
    "q=%00abc", "q=a%1Bb", "q=%7F",
    "q=", "q=+++", "k=5", "",
    "q=a&k=0", "q=a&k=-3", "q=a&k=abc", "q=a&k=" + "9" * 40, "q=a&k=101", "q=a&k=1e3",
    "q=a" + "&x=1" * 50,
]
FINE = [
    "q=caf%C3%A9+%E2%98%95+%F0%9F%90%88",
    "q=a%0Ab%09c",
    "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "q=red;k=3",
    "q=red&k=1",
    "q=%E4%B8%80%E5%8F%AA%E7%8C%AB",
    "q=..%2F..%2Fetc%2Fpasswd",
    "q=a&q=" + "b" * 10,
]


@pytest.mark.parametrize("query", GARBAGE)
def test_bad_query_strings_are_400(client, query):
    status, answer = client.json("/api/search?" + query)
    assert status == 400, (query, answer)
    assert isinstance(answer["error"], str) and "\n" not in answer["error"]


def test_a_query_of_emoji_only_is_answered_with_what_to_do(client):
    status, answer = client.json("/api/search?q=" + "%F0%9F%98%80" * 200)
    assert status == 400 and "describe the photo in words" in answer["error"]


@pytest.mark.parametrize("query", FINE)
def test_odd_but_valid_queries_are_answered(client, query):
    status, answer = client.json("/api/search?" + query)
    assert status == 200, (query, answer)
    assert answer["results"]


@pytest.mark.parametrize("query", ["id=", "id=abc", "id=-1", "id=1.5", "id=%FF", "id=" + "9" * 40, "id=99999"])
def test_bad_similar_requests_are_refused(client, query):
    assert client.json("/api/similar?" + query)[0] in (400, 404)


@pytest.mark.parametrize("request_line", [
    b"GET /api/search?q=\xff\xfe\x00 HTTP/1.0",
    b"GET /api/search?q=" + b"a" * 70000 + b" HTTP/1.0",
    b"GET /photo/\xc0\xae\xc0\xae/etc/passwd HTTP/1.0",
    b"GARBAGE",
    b"GET  HTTP/1.0",
    b"POST /api/search?q=red HTTP/1.0",
])
def test_raw_garbage_requests_never_crash_it(client, request_line):
    """400, 404, 414 (request line over 64 KiB) or 501 (POST): never a 500."""
    with socket.create_connection((client.host, client.port), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: 127.0.0.1\r\n\r\n")
        reply = sock.makefile("rb").read()
    status = re.match(rb"HTTP/1\.\d (\d{3})", reply)  # none: an HTTP/0.9 reply, body only
    assert reply and not (status and status.group(1) == b"500"), reply[:300]
    assert b"Traceback" not in reply and b"Error code: 500" not in reply
    assert client.get("/api/status")[0] == 200  # and it still answers


def test_foreign_host_headers_are_refused(client):
    assert client.get("/api/status", {"Host": "evil.example"})[0] == 403
    assert client.get("/", {"Host": "evil.example:8765"})[0] == 403
    for host in ("localhost", f"localhost:{client.port}", f"127.0.0.1:{client.port}", "[::1]:8765"):
        assert client.get("/api/status", {"Host": host})[0] == 200, host


def test_serve_binds_loopback_by_default(web_library):
    assert web.DEFAULT_HOST == "127.0.0.1"
    urls, stop = [], threading.Event()

    def ready(url: str) -> None:
        urls.append(url)
        stop.set()

    thread = threading.Thread(target=web.serve, args=(web_library["lib"],),
                              kwargs={"port": 0, "checkpoint": web_library["ckpt"], "on_ready": ready, "stop": stop})
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and len(urls) == 1
    assert urlsplit(urls[0]).hostname == "127.0.0.1"


def test_a_port_in_use_is_a_one_line_error(backend):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(web.service.ServiceError, match="cannot listen on 127.0.0.1"):
            web.make_server(backend, port=taken.getsockname()[1])
