"""Realistic test photos, made on the fly: camera-sized JPEGs with EXIF, never committed.

A photo is a bundled example photo (examples/photos) scaled up to the camera size, blended with
a smooth lighting gradient, a few soft shapes and sensor-like noise, and saved as a quality-90
JPEG with 4:2:0 chroma subsampling, like a phone's. That gives the decoder real work: the
files weigh what phone photos weigh (about 2.4 bits per pixel: 3.6 MB at 12 MP), unlike flat
test images.
EXIF holds the orientation (every fourth photo is a portrait stored sideways, orientation 6),
the camera's make and model, and DateTimeOriginal.

Each file has its own shapes and noise offset, so no two are copies (the scanner would reuse a
copy's vector instead of embedding it).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageDraw

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "photos" / "images"
VERSION = 2  # bump when the generator changes, so cached folders are made again
QUALITY = 90
NOISE_TILE = 509  # side of the repeated noise tile; prime, so the repeats do not line up with JPEG blocks


@dataclass(frozen=True)
class PhotoSet:
    folder: Path
    paths: list[Path]
    width: int
    height: int

    @property
    def mean_bytes(self) -> float:
        return float(np.mean([p.stat().st_size for p in self.paths]))

    @property
    def bits_per_pixel(self) -> float:
        return self.mean_bytes * 8 / (self.width * self.height)


def photo_set(root: Path, width: int, height: int, count: int, workers: int = 2) -> PhotoSet:
    """`count` photos of width x height in a folder under `root`, made once and then reused."""
    folder = Path(root) / f"photos-{width}x{height}-n{count}-v{VERSION}"
    marker = folder / "done.json"
    names = [f"IMG_{i:05d}.jpg" for i in range(count)]
    if not marker.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        jobs = [(folder / name, width, height, i) for i, name in enumerate(names)]
        if workers > 1 and count > 1:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_make_one, jobs, chunksize=max(1, count // (4 * workers))))
        else:
            for job in jobs:
                _make_one(job)
        marker.write_text(json.dumps({"width": width, "height": height, "count": count}))
    return PhotoSet(folder, [folder / name for name in names], width, height)


def _make_one(job) -> None:
    path, width, height, index = job
    make_photo(Path(path), width, height, index)


_BASES: dict[tuple[int, int, int], np.ndarray] = {}  # per process: upscaled examples, reused


def make_photo(path: Path, width: int, height: int, index: int) -> Path:
    """One realistic photo at `path`; the content depends only on (width, height, index)."""
    rng = np.random.default_rng([width, height, index])
    base = _base(width, height, index % 6).astype(np.int16)  # (H, W, 3)
    image = Image.fromarray(np.clip(base + _noise(rng, width, height), 0, 255).astype(np.uint8))
    _draw_shapes(image, rng)
    if index % 4 == 3:  # a portrait photo, stored sideways as cameras do
        image, orientation = image.transpose(Image.Transpose.ROTATE_90), 6
    else:
        orientation = 1
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "Benchcam"
    exif[ExifTags.Base.Model] = f"BC-{width * height // 1_000_000}MP"
    taken = datetime(2023, 1, 1, 9, 0, 0) + timedelta(hours=7 * index)
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken.strftime("%Y:%m:%d %H:%M:%S")
    tmp = path.with_suffix(".tmp")
    image.save(tmp, "JPEG", quality=QUALITY, subsampling="4:2:0", exif=exif.tobytes())
    os.replace(tmp, path)
    return path


def _base(width: int, height: int, which: int) -> np.ndarray:
    """An example photo scaled up to width x height under a soft lighting gradient."""
    key = (width, height, which)
    if key not in _BASES:
        examples = sorted(EXAMPLES.glob("*.jpg"))
        if examples:
            with Image.open(examples[(which * 7) % len(examples)]) as im:
                photo = im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
            pixels = np.asarray(photo, dtype=np.float32)
        else:  # no bundled photos: a colourful gradient scene instead
            pixels = np.zeros((height, width, 3), dtype=np.float32) + np.array([90, 120, 160], np.float32)
        y = np.linspace(0.75, 1.15, height, dtype=np.float32)[:, None, None]
        x = np.linspace(1.1, 0.85, width, dtype=np.float32)[None, :, None]
        _BASES[key] = np.clip(pixels * y * x, 0, 255).astype(np.uint8)
    return _BASES[key]


def _noise(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Sensor-like grain (sigma 7 levels in luma, 3 per channel on top), as int16 (H, W, 3):
    what brings a scaled-up photo to the 2.5-3 bits per pixel of a phone's JPEG."""
    tile = rng.normal(0, 7.0, (NOISE_TILE, NOISE_TILE, 1)) + rng.normal(0, 3.0, (NOISE_TILE, NOISE_TILE, 3))
    tile = tile.astype(np.int16)
    reps = (height // NOISE_TILE + 2, width // NOISE_TILE + 2, 1)  # room for the random offset
    noise = np.tile(tile, reps)
    dy, dx = rng.integers(0, NOISE_TILE, 2)
    return noise[dy:dy + height, dx:dx + width]


def _draw_shapes(image: Image.Image, rng: np.random.Generator) -> None:
    """A few soft-edged objects (drawn at a quarter size, then scaled up): each photo's own."""
    width, height = image.size
    small = (max(1, width // 4), max(1, height // 4))
    layer = Image.new("RGBA", small, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    side = min(small)
    for _ in range(int(rng.integers(3, 7))):
        r = int(rng.integers(max(1, side // 20), max(2, side // 5)))
        cx, cy = int(rng.integers(0, small[0])), int(rng.integers(0, small[1]))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3)) + (int(rng.integers(90, 200)),)
        box = (cx - r, cy - r, cx + r, cy + r)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    layer = layer.resize((width, height), Image.Resampling.BILINEAR)
    image.paste(layer, (0, 0), layer)
