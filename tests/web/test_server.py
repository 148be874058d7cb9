"""The page's JSON API, thumbnails and files over a small real library (tiny real model)."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from photosearch.indexer import service
from photosearch.indexer.ipc import SocketServer
from photosearch.indexer.web import ASSETS, DEFAULT_K, LibraryBackend
from photosearch.storage import Library

RESULT_FIELDS = {"rank", "id", "path", "name", "score", "raw_score", "taken_at", "thumb", "photo", "tags", "copies"}


def ids_by_name(client) -> dict[str, int]:
    status, answer = client.json("/api/search?q=a+red+circle&k=100")
    assert status == 200, answer
    return {hit["name"]: hit["id"] for hit in answer["results"]}


def test_search_returns_ranked_results_with_ids_and_urls(client, web_library):
    status, answer = client.json("/api/search?q=a%20red%20circle&k=3")
    assert status == 200, answer
    assert answer["query"] == "a red circle" and answer["k"] == 3 and answer["source"] == "in-process"
    hits = answer["results"]
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert all(set(hit) == RESULT_FIELDS for hit in hits)
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)
    for hit in hits:
        assert hit["thumb"] == f"/thumb/{hit['id']}" and hit["photo"] == f"/photo/{hit['id']}"
        assert hit["name"] == os.path.basename(hit["path"]) and hit["path"].startswith(str(web_library["root"]))


def test_search_defaults_to_a_page_of_results(client, web_library):
    status, answer = client.json("/api/search?q=blue")
    assert status == 200 and answer["k"] == DEFAULT_K
    assert len(answer["results"]) == 7  # every indexed photo: fewer than a page


def test_similar_leaves_the_photo_out(client):
    photo_id = ids_by_name(client)["red_circle.png"]
    status, answer = client.json(f"/api/similar?id={photo_id}&k=4")
    assert status == 200, answer
    assert answer["photo"]["id"] == photo_id and answer["photo"]["name"] == "red_circle.png"
    assert len(answer["results"]) == 4 and photo_id not in [hit["id"] for hit in answer["results"]]


def test_status_reports_counts_model_and_daemon(client, web_library):
    status, report = client.json("/api/status")
    assert status == 200
    assert report["photos"]["indexed"] == 7 and report["photos"]["total"] == 7
    assert report["model"]["fingerprint"] and not report["model"]["mismatch"]
    assert report["daemon"] == {"running": False, "pid": None, "scanning": None}
    assert report["library"]["path"] == str(web_library["lib"])


def test_page_and_assets_are_served_with_a_strict_policy(client):
    status, headers, body = client.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'self' covers it
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b'<input id="q"' in body
    status, headers, script = client.get("/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert client.get("/favicon.ico")[0] == 200


def test_page_script_never_parses_data_as_html():
    script = (ASSETS / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


def test_thumbnails_are_made_once_and_cached_in_the_library(client, backend, web_library):
    photo_id = ids_by_name(client)["blue_circle.png"]
    before = backend.thumbnails.made
    status, headers, first = client.get(f"/thumb/{photo_id}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert backend.thumbnails.made == before + 1
    cached = list((web_library["lib"] / "thumbnails").glob(f"{photo_id}-*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == first
    status, _, second = client.get(f"/thumb/{photo_id}")
    assert status == 200 and second == first and backend.thumbnails.made == before + 1
    status, _, body = client.get(f"/thumb/{photo_id}", {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    with Image.open(io.BytesIO(first)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= 256


def test_thumbnails_are_upright(client):
    photo_id = ids_by_name(client)["sideways.jpg"]
    status, _, data = client.get(f"/thumb/{photo_id}")
    assert status == 200
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.size == (40, 60)


def test_photo_is_the_original_file(client, web_library):
    photo_id = ids_by_name(client)["green_triangle.png"]
    status, headers, body = client.get(f"/photo/{photo_id}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert body == (web_library["root"] / "green_triangle.png").read_bytes()


def test_an_empty_library_is_a_user_error(tmp_path, tiny_checkpoint):
    with pytest.raises(service.ServiceError, match="is empty"):
        LibraryBackend(tmp_path / "nothing-here", tiny_checkpoint)


def test_searches_go_to_the_daemon_when_one_answers(client, web_library):
    """A stand-in daemon: the very Searcher `photosearch watch` serves, on the library's socket."""
    model = service.load_model(web_library["ckpt"])
    with Library.open(web_library["lib"], read_only=True) as lib:
        searcher = service.Searcher(lib, web_library["lib"], model=model, daemon_pid=os.getpid())
        with SocketServer(web_library["lib"], searcher.answer):
            status, answer = client.json("/api/search?q=a+blue+circle&k=2")
            assert status == 200 and answer["source"] == "daemon"
            assert all(set(hit) == RESULT_FIELDS for hit in answer["results"])
            status, report = client.json("/api/status")
            assert report["daemon"]["running"] and report["daemon"]["pid"] == os.getpid()
    status, answer = client.json("/api/search?q=a+blue+circle&k=2")
    assert status == 200 and answer["source"] == "in-process"
