"""The shipped checkpoint on the bundled demo photos: everyday queries put a matching photo first."""

import json
from pathlib import Path

import pytest

from photosearch.indexer import service

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "examples" / "photos"
CHECKPOINT = REPO / "checkpoints" / "default.safetensors"

QUERIES = {
    "a red stop sign": ("stop sign",),
    "a laptop on a desk": ("laptop", "computer"),
    "pizza on a plate": ("pizza",),
    "a cat": ("cat", "kitten"),
}


@pytest.fixture(scope="module")
def demo_library(tmp_path_factory):
    if not CHECKPOINT.is_file():
        pytest.skip(f"{CHECKPOINT.relative_to(REPO)} is not trained yet")
    library = tmp_path_factory.mktemp("demo-library")
    report = service.index([str(PHOTOS / "images")], str(library), str(CHECKPOINT))
    assert report["added"] == 51 and report["failed"] == 0
    return library


def captions_by_file() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in json.loads((PHOTOS / "captions.json").read_text()):
        out.setdefault(entry["file_name"], []).append(entry["caption"].lower())
    return out


@pytest.mark.parametrize("query", QUERIES)
def test_everyday_query_puts_a_matching_photo_first(demo_library, query):
    answer = service.query(query, k=3, library_dir=str(demo_library), checkpoint=str(CHECKPOINT))
    top = Path(answer["results"][0]["path"]).name
    captions = captions_by_file()[top]
    assert any(word in c for c in captions for word in QUERIES[query]), (query, top, captions)
