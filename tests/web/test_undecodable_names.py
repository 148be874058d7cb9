"""Paths are bytes, not text (issue 12, part 5), on the web page: a folder named `No\\xebl`
(Latin-1) comes out of the JSON API as valid Unicode plus the exact bytes, and its photos'
thumbnails, files and "more like this" work (in-process and through the daemon's socket)."""

from __future__ import annotations

import base64
import contextlib
import os

import pytest

from photosearch.indexer import service
from photosearch.indexer.ipc import SocketServer
from photosearch.indexer.web import LibraryBackend
from photosearch.storage import Library
from tests.daemon.conftest import draw
from tests.undecodable import odd_name
from tests.web.conftest import serving


@pytest.fixture(scope="module")
def odd_web(tmp_path_factory, tiny_checkpoint):
    base = tmp_path_factory.mktemp("web-odd")
    lib, odd = base / "lib", odd_name(base / "photos")
    draw(odd / "red_circle.png", "red", "circle")
    draw(odd / "green_square.png", "green", "square", 1)
    draw(base / "photos" / "blue_square.png", "blue", "square", 2)
    assert service.index([str(base / "photos")], str(lib), str(tiny_checkpoint))["added"] == 3
    return {"odd": odd, "lib": lib, "ckpt": tiny_checkpoint}


@pytest.fixture(params=["in-process", "daemon"])
def odd_client(request, odd_web):
    """A server over `odd_web`; with "daemon", searches go through a socket server in this process."""
    backend = LibraryBackend(odd_web["lib"], odd_web["ckpt"])
    with contextlib.ExitStack() as stack:
        if request.param == "daemon":  # the daemon's answering code behind a real socket
            lib = stack.enter_context(Library.open(odd_web["lib"], read_only=True))
            searcher = service.Searcher(lib, odd_web["lib"], model=service.load_model(odd_web["ckpt"]),
                                        daemon_pid=os.getpid())
            stack.enter_context(SocketServer(odd_web["lib"], searcher.answer))
        yield from _served(backend, request.param)


def _served(backend, source):
    with serving(backend, "test-web-odd") as client:
        yield client, source


def test_api_names_are_valid_unicode_with_exact_bytes_and_files_are_served(odd_client, odd_web):
    client, source = odd_client
    odd_bytes = os.fsencode(odd_web["odd"])
    status, headers, body = client.get("/api/search?q=red+circle&k=10")
    assert status == 200 and b"\\udc" not in body, body
    body.decode("utf-8")
    answer = client.json("/api/search?q=red+circle&k=10")[1]
    assert answer["source"] == source
    odd_hits = [hit for hit in answer["results"] if "path_bytes" in hit]
    assert {base64.b64decode(hit["path_bytes"]) for hit in odd_hits} == {
        odd_bytes + b"/red_circle.png", odd_bytes + b"/green_square.png"}
    assert all("No\ufffdl/" in hit["path"] and "name_bytes" not in hit for hit in odd_hits)
    red = next(hit for hit in odd_hits if hit["name"] == "red_circle.png")
    for kind in ("thumb", "photo"):
        status, headers, data = client.get(red[kind])
        assert status == 200 and data, (kind, status, data[:200])
    status, like = client.json(f"/api/similar?id={red['id']}&k=5")
    assert status == 200, like
    assert base64.b64decode(like["photo"]["path_bytes"]) == odd_bytes + b"/red_circle.png"
    assert odd_bytes + b"/green_square.png" in {base64.b64decode(h["path_bytes"]) for h in like["results"]
                                                if "path_bytes" in h}
    status, report = client.json("/api/status")
    assert status == 200 and report["photos"]["indexed"] == 3, report
