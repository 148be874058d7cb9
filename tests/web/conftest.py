"""Fixtures for the web page tests: a small indexed library (shapes drawn on the fly, a
sideways-stored JPEG, a symlink out of the library) and `photosearch serve`'s server on it,
running in a thread on a free port."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from photosearch.indexer import service
from photosearch.indexer.web import LibraryBackend, make_server, url
from tests.daemon.conftest import draw, tiny_checkpoint  # noqa: F401 - a fixture

SHAPES = [("red", "circle"), ("red", "square"), ("blue", "circle"), ("green", "triangle"), ("yellow", "square")]


def draw_sideways_jpeg(path: Path) -> Path:
    """A 60x40 JPEG whose EXIF says "rotate 90°": shown upright it is 40 wide, 60 high."""
    image = Image.new("RGB", (60, 40), (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, exif=exif.tobytes())
    return path


@pytest.fixture(scope="module")
def web_library(tmp_path_factory, tiny_checkpoint) -> dict:  # noqa: F811 - the imported fixture
    base = tmp_path_factory.mktemp("web")
    root, lib, outside = base / "photos", base / "lib", base / "outside"
    for i, (colour, shape) in enumerate(SHAPES):
        draw(root / f"{colour}_{shape}.png", colour, shape, variant=i)
    draw_sideways_jpeg(root / "sideways.jpg")
    secret = draw(outside / "secret.png", "blue", "square", variant=7)
    (root / "link.png").symlink_to(secret)
    report = service.index([str(root)], str(lib), str(tiny_checkpoint))
    assert report["added"] == len(SHAPES) + 2, report
    return {"root": root, "lib": lib, "ckpt": tiny_checkpoint, "secret": secret}


class Client:
    """Raw HTTP requests (no path normalisation) to one server, with the cookie a browser gets
    from the link that carries the run's token (`url(server)`)."""

    def __init__(self, token_url: str):
        parts = urlsplit(token_url)
        self.base, self.host, self.port = f"{parts.scheme}://{parts.netloc}/", parts.hostname, parts.port
        self.token = parse_qs(parts.query)["token"][0]
        self.cookie = f"photosearch-{self.port}={self.token}"

    def get(self, raw_path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        """`raw_path` as sent; with the cookie unless `headers` names its own "Cookie"."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request("GET", raw_path, headers={"Cookie": self.cookie, **(headers or {})})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(self, raw_path: str) -> tuple[int, dict]:
        status, headers, body = self.get(raw_path)
        assert headers["Content-Type"].startswith("application/json"), headers
        return status, json.loads(body)


@contextlib.contextmanager
def serving(backend: LibraryBackend, name: str = "test-web"):
    """A Client of a server over `backend` on a free port, in a thread; afterwards the server is
    shut down, its thread joined and the backend closed."""
    server = make_server(backend, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name)
    thread.start()
    try:
        yield Client(url(server))
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        backend.close()


@pytest.fixture(scope="module")
def served(web_library):
    """(client, backend) of a server over `web_library`, answering in-process."""
    backend = LibraryBackend(web_library["lib"], web_library["ckpt"])
    with serving(backend) as client:
        yield client, backend


@pytest.fixture
def client(served) -> Client:
    return served[0]


@pytest.fixture
def backend(served) -> LibraryBackend:
    return served[1]
