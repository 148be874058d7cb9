"""The perceptual hash stays close under re-encoding, resizing, a 5% crop and +10% brightness,
and is far between two different photos."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageEnhance

from photosearch.indexer.perceptual_hash import hash_distance, perceptual_hash

DEMO = Path(__file__).resolve().parents[2] / "examples" / "photos" / "images"


def reencoded(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_edits_stay_close_and_other_photos_are_far():
    photo = Image.open(DEMO / "000000160012.jpg").convert("RGB")
    w, h = photo.size
    original = perceptual_hash(photo)
    edits = [reencoded(photo, 60), photo.resize((w // 2, h // 2)),
             photo.crop((w // 40, h // 40, w - w // 40, h - h // 40)), ImageEnhance.Brightness(photo).enhance(1.1)]
    assert max(hash_distance(original, perceptual_hash(edit)) for edit in edits) <= 12
    others = [perceptual_hash(Image.open(DEMO / f"{stem}.jpg")) for stem in ("000000121647", "000000359219")]
    assert min(hash_distance(original, other) for other in others) > 20
    assert -(2**63) <= original < 2**63  # fits SQLite's INTEGER
    assert hash_distance(original, original) == 0
