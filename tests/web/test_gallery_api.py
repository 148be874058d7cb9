"""The page's JSON API for the gallery and the richer searches: browse newest first in pages,
search and similar pages ("more"), filters, the search box's arithmetic, and a photo uploaded
as the query (embedded, nothing kept)."""

from __future__ import annotations

import http.client
import io
import json
import os

from PIL import Image

from tests.web.test_server import ids_by_name


def post(client, raw_path: str, body: bytes, content_type: str = "image/png", cookie: bool = True) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(client.host, client.port, timeout=60)
    try:
        headers = {"Content-Type": content_type, **({"Cookie": client.cookie} if cookie else {})}
        conn.request("POST", raw_path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_browse_pages_through_the_library_newest_first(client, web_library):
    os.utime(web_library["root"] / "red_circle.png", (1_900_000_000, 1_900_000_000))  # not seen until a rescan
    status, first = client.json("/api/browse?k=4")
    assert status == 200, first
    assert first["more"] is True and first["total"] == 7 and len(first["results"]) == 4
    status, rest = client.json("/api/browse?k=4&offset=4")
    assert rest["more"] is False and len(rest["results"]) == 3
    everything = first["results"] + rest["results"]
    assert len({hit["id"] for hit in everything}) == 7
    taken = [hit["taken_at"] for hit in everything]
    assert taken == sorted(taken, reverse=True)
    assert all(hit["thumb"] == f"/thumb/{hit['id']}" and hit["name"] == os.path.basename(hit["path"])
               for hit in everything)


def test_search_pages_follow_on_without_repeats(client):
    status, first = client.json("/api/search?q=red&k=3")
    status, second = client.json("/api/search?q=red&k=3&offset=3")
    assert first["more"] is True and status == 200
    whole = client.json("/api/search?q=red&k=6")[1]["results"]
    assert [h["id"] for h in first["results"] + second["results"]] == [h["id"] for h in whole]
    assert [h["rank"] for h in second["results"]] == [4, 5, 6]
    last = client.json("/api/search?q=red&k=3&offset=6")[1]
    assert last["more"] is False and len(last["results"]) == 1


def test_filters_apply_to_search_similar_and_browse(client, web_library):
    status, none = client.json("/api/search?q=red&from=2100")
    assert status == 200 and none["results"] == [] and none["from"] == "2100"
    assert client.json("/api/browse?to=1999")[1]["results"] == []
    photo_id = ids_by_name(client)["red_circle.png"]
    assert client.json(f"/api/similar?id={photo_id}&from=2100")[1]["results"] == []
    for path in ("/api/search?q=red&from=2023-13", "/api/browse?under=/no/such/folder", "/api/search?q=red&to=soon"):
        status, answer = client.json(path)
        assert status == 400 and answer["error"], (path, answer)


def test_the_search_box_does_arithmetic(client):
    status, answer = client.json("/api/search?q=red+%2B+circle+-+blue:0.5&k=7")
    assert status == 200, answer
    assert answer["query"] == "red + circle - blue:0.5"
    assert [t["weight"] for t in answer["terms"]] == [1.0, 1.0, -0.5]
    assert client.json("/api/search?q=-+blue")[0] == 400


def test_a_photo_from_the_computer_is_a_query_and_is_not_kept(client, web_library, backend):
    buffer = io.BytesIO()
    Image.open(web_library["root"] / "blue_circle.png").save(buffer, "PNG")
    before = sorted(os.listdir(web_library["lib"]))
    status, answer = post(client, "/api/similar-upload?k=2", buffer.getvalue())
    assert status == 200, answer
    assert answer["results"][0]["name"] == "blue_circle.png"  # the same picture, from outside
    assert sorted(os.listdir(web_library["lib"])) == before
    assert post(client, "/api/similar-upload", b"not a photo")[0] == 400
    assert post(client, "/api/similar-upload?k=2", buffer.getvalue(), cookie=False)[0] == 403  # the run's token
    assert post(client, "/api/similar-upload", b"")[0] == 400
    assert post(client, "/api/nothing-here", b"x")[0] == 404
