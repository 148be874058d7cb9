"""Decoding photo files into upright RGB images small enough to embed quickly.

`load_photo` is the one entry point. It never lets a bad file crash the caller: anything
that cannot be turned into an RGB picture raises `PhotoDecodeError` with a short reason a
person can read ("truncated or corrupt image data", "empty file", ...).

What it takes care of:
- JPEGs are decoded at a reduced scale (libjpeg DCT scaling via `Image.draft`) so that a
  12 MP photo costs about as much as a 1 MP one; other formats are box-reduced after
  decoding. Either way the short side stays at least twice the model's input size.
- EXIF orientation is applied, so a portrait shot stored sideways comes out upright.
- Every Pillow mode becomes RGB: transparency is composited on white, 16-bit and float
  greyscale are scaled into 0..255 rather than clipped, CMYK and palettes are converted.
- Animated images (GIF, APNG, WebP) give their first frame.
- HEIC/HEIF (iPhone photos) and AVIF decode like the rest (decoders: `indexer.formats`); one
  whose decoder is missing fails with a reason that says what to install.
- The pixel count is checked from the header before any pixel is decoded
  (decompression-bomb guard).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from photosearch.indexer.formats import PHOTO_EXTENSIONS, is_photo, kind_of, missing_decoder
from photosearch.indexer.taken_time import exif_taken_at

# What counts as a photo is fixed (indexer.formats); a photo whose decoder is missing fails
# with a reason that says what to install. Kept here under its old name for the callers.
SUPPORTED_EXTENSIONS = PHOTO_EXTENSIONS

MAX_PIXELS = 100_000_000  # refuse images whose header declares more pixels than this
DEFAULT_TARGET = 224  # the model's input side; images are kept at >= 2x this

_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # the ones that rotate by 90 degrees


class PhotoDecodeError(Exception):
    """A file could not be turned into a picture; `reason` is short and human-readable."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class DecodedPhoto:
    """An upright RGB image ready for the model, plus facts about the original file.

    `width`/`height` are the full-resolution size as displayed (after EXIF orientation),
    not the size of the reduced `image`.
    """

    image: Image.Image
    width: int
    height: int
    taken_at: datetime | None  # EXIF DateTimeOriginal, local wall time (indexer.taken_time)
    taken_offset: int | None = None  # its UTC offset in minutes (OffsetTimeOriginal), if any


def is_supported(path: str | os.PathLike) -> bool:
    """Whether the file name has a photo extension (case-insensitive), decodable here or not."""
    return is_photo(path)


def load_photo(
    path: str | os.PathLike, target: int = DEFAULT_TARGET, max_pixels: int = MAX_PIXELS
) -> DecodedPhoto:
    """Decode `path` into an upright RGB image whose short side is about 2*target or more.

    Raises PhotoDecodeError (never anything else for bad content or unreadable files).
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise PhotoDecodeError(path, "file not found") from None
    except OSError as exc:
        raise PhotoDecodeError(path, _os_reason(exc)) from None
    if size == 0:
        raise PhotoDecodeError(path, "empty file")
    try:
        with open(path, "rb") as fh:
            return _decode(fh, path, target, max_pixels)
    except PhotoDecodeError:
        raise
    except OSError as exc:
        if exc.errno is not None:  # the OS failed us (permissions, I/O), not the file format
            raise PhotoDecodeError(path, _os_reason(exc)) from None
        raise PhotoDecodeError(path, "truncated or corrupt image data") from None
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise almost anything on bad data
        raise PhotoDecodeError(path, f"corrupt image data ({type(exc).__name__})") from None


def load_photo_bytes(
    data: bytes, name: str = "upload", target: int = DEFAULT_TARGET, max_pixels: int = MAX_PIXELS
) -> DecodedPhoto:
    """As `load_photo`, for a photo held in memory (an upload): nothing is written anywhere."""
    if not data:
        raise PhotoDecodeError(name, "empty file")
    try:
        return _decode(io.BytesIO(data), name, target, max_pixels)
    except PhotoDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow plugins raise almost anything on bad data
        raise PhotoDecodeError(name, f"corrupt image data ({type(exc).__name__})") from None


def _decode(fh, path, target: int, max_pixels: int) -> DecodedPhoto:
    with warnings.catch_warnings():
        # Our own max_pixels check below replaces Pillow's warning threshold, and Pillow's
        # complaints about a file ("Corrupt EXIF data") are not news for whoever runs us.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        head = fh.read(64)
        fh.seek(0)
        try:
            img = Image.open(fh)
        except UnidentifiedImageError:
            reason = missing_decoder(path, head) or _unidentified_reason(path, head)
            raise PhotoDecodeError(path, reason) from None
        except Image.DecompressionBombError as exc:
            raise PhotoDecodeError(path, _bomb_reason(exc, max_pixels)) from None
        width, height = img.size
        if width <= 0 or height <= 0:
            raise PhotoDecodeError(path, "image has no pixels")
        if width * height > max_pixels:
            raise PhotoDecodeError(
                path,
                f"image too large ({width}x{height} = {width * height / 1e6:.0f} MP, "
                f"limit {max_pixels / 1e6:g} MP)",
            )
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        exif = _read_exif(img)
        if img.format in ("JPEG", "MPO"):  # MPO: phones' multi-picture JPEGs
            img.draft("RGB", (2 * target, 2 * target))
        img.load()

    orientation = exif.get(_ORIENTATION_TAG, 1) if exif is not None else 1
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    rgb = to_rgb(img)
    taken, offset = exif_taken_at(exif) or (None, None)
    return DecodedPhoto(
        image=_reduce(rgb, 2 * target), width=width, height=height, taken_at=taken, taken_offset=offset
    )


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency onto white.

    An image that is already plain RGB is returned as is (no copy).
    """
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I;16"):
        return _grey_array_to_rgb(np.asarray(img, dtype=np.float64) / 257.0)
    if mode == "I":
        return _grey_array_to_rgb(_scale_int(np.asarray(img, dtype=np.float64)))
    if mode == "F":
        return _grey_array_to_rgb(_scale_float(np.asarray(img, dtype=np.float64)))
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        if mode == "La":
            img = img.convert("LA")
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _scale_int(values: np.ndarray) -> np.ndarray:
    """32-bit integer greyscale: 8-bit range kept, 16-bit range scaled, else stretched."""
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0 and hi <= 255:
        return values
    if lo >= 0 and hi <= 65535:
        return values / 257.0
    return _stretch(values, lo, hi)


def _scale_float(values: np.ndarray) -> np.ndarray:
    """Float greyscale: [0, 1] data scaled to 0..255, anything else stretched."""
    finite = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0 and hi <= 1:
        return finite * 255.0
    if lo >= 0 and hi <= 255:
        return finite
    return _stretch(finite, lo, hi)


def _stretch(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros_like(values)
    return (values - lo) * (255.0 / (hi - lo))


def _grey_array_to_rgb(grey: np.ndarray) -> Image.Image:
    eight_bit = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return Image.fromarray(eight_bit, mode="L").convert("RGB")


def _reduce(img: Image.Image, min_side: int) -> Image.Image:
    """Box-reduce by an integer factor while the short side stays >= min_side."""
    factor = min(img.size) // min_side
    return img.reduce(factor) if factor >= 2 else img


def _read_exif(img: Image.Image) -> Image.Exif | None:
    try:
        return img.getexif()
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the photo
        return None


def _bomb_reason(exc: Exception, max_pixels: int) -> str:
    """Pillow's own hard limit fired before our header check could; say it in our words."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    declared = f"{int(found.group(1)) / 1e6:.0f} MP, " if found else ""
    return f"image too large ({declared}limit {max_pixels / 1e6:g} MP)"


def _unidentified_reason(path, head: bytes) -> str:
    kind = kind_of(path, head)
    if kind is not None:  # the decoder is there but refused the file
        return f"not a readable {kind} image (corrupt, or a codec this build lacks)"
    return "not a recognised image format"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    return (exc.strerror or type(exc).__name__).lower()
