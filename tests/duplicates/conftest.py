"""A real library for the duplicates and tags tests: bundled demo photos (committed in
examples/photos), edited copies of some of them made in tmp_path, indexed with the shipped
model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from photosearch.indexer import service

DEMO = Path(__file__).resolve().parents[2] / "examples" / "photos" / "images"
COPIED = ["000000160012", "000000519208", "000000252639"]  # pizza, elephant, trolleybus
OTHERS = ["000000121647", "000000359219", "000000423617", "000000568290", "000000433998",
          "000000174375", "000000557172", "000000358083"]  # other pizzas, buses, ballgames, basins


def edited_copies(source: Path, folder: Path) -> list[Path]:
    """Re-encoded at JPEG quality 60, resized to 50%, cropped by 5% (2.5% off each side)."""
    image = Image.open(source).convert("RGB")
    w, h = image.size
    dx, dy = round(w * 0.025), round(h * 0.025)
    made = {f"{source.stem}.q60.jpg": (image, 60), f"{source.stem}.half.jpg": (image.resize((w // 2, h // 2)), 90),
            f"{source.stem}.crop5.jpg": (image.crop((dx, dy, w - dx, h - dy)), 90)}
    for name, (edited, quality) in made.items():
        edited.save(folder / name, quality=quality)
    return [folder / name for name in made]


@pytest.fixture(scope="module")
def real_library(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("dups")
    root, lib = base / "photos", base / "lib"
    (root / "edits").mkdir(parents=True)
    for stem in COPIED + OTHERS:
        shutil.copy(DEMO / f"{stem}.jpg", root / f"{stem}.jpg")
    for stem in COPIED:
        edited_copies(DEMO / f"{stem}.jpg", root / "edits")
    (root / "backup").mkdir()
    shutil.copy(DEMO / f"{COPIED[0]}.jpg", root / "backup" / "pizza copy.jpg")  # byte-identical
    report = service.index([str(root)], str(lib))
    assert report["added"] == len(COPIED) * 4 + len(OTHERS) + 1 and not report["failed"], report
    return {"root": root, "lib": lib}
