"""A gallery of the files real photo folders hold besides clean photos, made on the fly.

Each `Specimen` writes one file and says what the indexer must make of it: a failure whose
reason contains `reason`, or (reason None) an ordinary indexed photo, however odd the file.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Specimen:
    name: str  # what it is, as the summary shows it
    file_name: str
    make: Callable[[Path], None]
    reason: str | None  # expected failure reason (a substring); None: must be indexed

    def write(self, folder: Path) -> Path:
        path = folder / self.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.make(path)
        return path


def _noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", **kwargs)
    return out.getvalue()


def truncated_jpeg(path: Path) -> None:
    data = _jpeg_bytes(_noise((160, 120)))
    path.write_bytes(data[: len(data) // 2])


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header declares width x height."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4)) + chunk(b"IEND", b""))


def palette_with_transparency(path: Path) -> None:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (8, 8, 24, 24))
    image.save(path, transparency=0)


def animated_gif(path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)


def exif_rotated_jpeg(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path.write_bytes(_jpeg_bytes(_noise((48, 32), seed=3), exif=exif.tobytes()))


def broken_exif_jpeg(path: Path) -> None:
    """A JPEG whose APP1 "Exif" segment holds garbage: the picture itself is fine."""
    data = _jpeg_bytes(_noise((32, 32), seed=4))
    garbage = b"Exif\x00\x00" + b"MM\x00\x2a\xff\xff\xff\xf0" + bytes(range(40))
    segment = b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage
    path.write_bytes(data[:2] + segment + data[2:])


GALLERY = [
    Specimen("zero-byte file", "empty.jpg", lambda p: p.write_bytes(b""), "empty file"),
    Specimen("truncated JPEG", "cut.jpg", truncated_jpeg, "truncated"),
    Specimen("text file named .jpg", "notes.jpg", lambda p: p.write_text("not a photo\n" * 50),
             "not a recognised image format"),
    Specimen("decompression bomb", "bomb.png", lambda p: p.write_bytes(png_declaring(100_000, 100_000)),
             "too large"),
    Specimen("PNG signature then garbage", "noise.png",
             lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8), ""),
    Specimen("CMYK JPEG", "cmyk.jpg", lambda p: Image.new("CMYK", (32, 32), (0, 200, 200, 0)).save(p), None),
    Specimen("16-bit PNG", "grey16.png", lambda p: Image.new("I;16", (32, 32), 40000).save(p), None),
    Specimen("palette PNG with transparency", "palette.png", palette_with_transparency, None),
    Specimen("animated GIF", "animated.gif", animated_gif, None),
    Specimen("EXIF-rotated JPEG", "sideways.jpg", exif_rotated_jpeg, None),
    Specimen("JPEG with a garbage EXIF block", "bad_exif.jpg", broken_exif_jpeg, None),
]
