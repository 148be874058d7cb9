"""Demo photos converted to HEIC and AVIF are indexed and found by the shipped checkpoint.

The photos a query should find are converted (stop signs to HEIC, pizzas to AVIF, cats to
iPhone-style portrait HEICs stored sideways with EXIF orientation 6); a few other demo photos
stay JPEGs as the competition.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from photosearch.indexer import service
from tests.e2e.test_demo_queries import CHECKPOINT, PHOTOS, captions_by_file

pillow_heif = pytest.importorskip("pillow_heif", reason="writing HEIC needs pillow-heif (test extra)")

CONVERTED = {  # query -> (words one of its captions holds, how the matching photos are saved)
    "a red stop sign": (("stop sign",), ".heic"),
    "pizza on a plate": (("pizza",), ".avif"),
    "a cat": (("cat", "kitten"), ".HEIC"),
}
OTHERS = 8  # demo photos kept as JPEGs, that match none of the queries


def _matches(captions: list[str], words) -> bool:
    return any(word in caption for caption in captions for word in words)


def _save_heic(img: Image.Image, path: Path, sideways: bool) -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:01 12:00:00"
    if sideways:  # stored turned 90 degrees counter-clockwise; orientation 6 turns it back
        img = img.transpose(Image.Transpose.ROTATE_90)
        exif[ExifTags.Base.Orientation] = 6
    pillow_heif.from_pillow(img).save(path, quality=80, exif=exif.tobytes())


@pytest.fixture(scope="module")
def iphone_library(tmp_path_factory):
    if not CHECKPOINT.is_file():
        pytest.skip(f"{CHECKPOINT} is not trained yet")
    folder = tmp_path_factory.mktemp("iphone-photos")
    captions = captions_by_file()
    taken = set()
    for words, suffix in CONVERTED.values():
        for name, caps in sorted(captions.items()):
            if _matches(caps, words) and name not in taken:
                taken.add(name)
                with Image.open(PHOTOS / "images" / name) as img:
                    target = folder / (Path(name).stem + suffix)
                    if suffix == ".avif":
                        img.convert("RGB").save(target, quality=70)
                    else:
                        _save_heic(img.convert("RGB"), target, sideways=suffix == ".HEIC")
    every_word = [w for words, _ in CONVERTED.values() for w in words]
    others = [n for n, caps in sorted(captions.items()) if not _matches(caps, every_word)]
    for name in others[:OTHERS]:
        (folder / name).write_bytes((PHOTOS / "images" / name).read_bytes())
    library = tmp_path_factory.mktemp("iphone-library")
    report = service.index([str(folder)], str(library), str(CHECKPOINT))
    assert report["failed"] == 0, report["failures"]
    assert report["added"] == len(taken) + OTHERS
    return library


@pytest.mark.parametrize("query", CONVERTED)
def test_converted_photo_is_found_first(iphone_library, query):
    answer = service.query(query, k=3, library_dir=str(iphone_library), checkpoint=str(CHECKPOINT))
    top = Path(answer["results"][0]["path"])
    words, suffix = CONVERTED[query]
    assert top.suffix == suffix, (query, top.name)
    assert _matches(captions_by_file()[top.stem + ".jpg"], words), (query, top.name)


def test_status_counts_them_indexed_with_size_and_date(iphone_library):
    answer = service.status(library_dir=str(iphone_library), checkpoint=str(CHECKPOINT))
    assert answer["failed"] == [] and answer["photos"]["indexed"] == answer["photos"]["total"]
    from photosearch.storage import Library

    with Library.open(iphone_library, read_only=True) as lib:
        heics = [r for r in lib.photos_by_status("indexed") if r.path.endswith(".HEIC")]
        assert heics
        for record in heics:  # stored sideways, indexed as shot: the JPEG's own size
            with Image.open(PHOTOS / "images" / (Path(record.path).stem + ".jpg")) as original:
                assert (record.width, record.height) == original.size
            assert record.taken_at == datetime(2024, 5, 1, 12, 0, 0)
