"""Shared fixtures: tiny captioned image sets drawn on the fly, and the real data when present."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 60, 220), "yellow": (235, 210, 40)}
SHAPES = ("circle", "square", "triangle")


def draw_shape(path: Path, colour: str, shape: str, variant: int, size: int = 96) -> None:
    """A coloured shape on a light background; `variant` moves and scales it."""
    image = Image.new("RGB", (size, size), (235, 235, 235) if variant % 2 else (200, 200, 210))
    draw = ImageDraw.Draw(image)
    r = size // 4 + (variant % 3) * 4
    cx, cy = size // 2 + (variant % 3 - 1) * 8, size // 2 + (variant % 2) * 6 - 3
    box = (cx - r, cy - r, cx + r, cy + r)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    image.save(path)


def make_shapes_set(root: Path, variants: range) -> list[dict]:
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for colour in COLOURS:
        for shape in SHAPES:
            for v in variants:
                name = f"{colour}_{shape}_{v}.png"
                draw_shape(root / name, colour, shape, v)
                entries += [
                    {"file_name": name, "caption": f"a {colour} {shape}"},
                    {"file_name": name, "caption": f"a {shape} that is {colour}"},
                    {"file_name": name, "caption": f"{colour} {shape} on a grey background"},
                ]
    return entries


@pytest.fixture
def shapes_dataset(tmp_path: Path) -> dict:
    """Train (3 variants) and validation (1 other variant) sets of 12 colour x shape classes."""
    images = tmp_path / "images"
    train = make_shapes_set(images, range(0, 3))
    val = make_shapes_set(images, range(3, 4))
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "val.json").write_text(json.dumps(val))
    return {"root": tmp_path, "images": images, "train": tmp_path / "train.json", "val": tmp_path / "val.json"}


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "demo-photos" / "captions.json").is_file():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail any test that leaves a thread running (watchdog's tests do the same)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for t in leaked:
        t.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads leaked: {still}"
