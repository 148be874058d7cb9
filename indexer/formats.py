"""Which files are photos, and the decoders photosearch needs to read every kind of them.

The set of photo extensions is fixed: it says what photosearch considers a photo, not what
this installation happens to decode. A `.heic` file is a photo whether or not a HEIF decoder
is installed; if none is, indexing it fails with a reason that says what to install, instead
of the file being silently skipped ("0 added, 0 failed").

Decoders beyond Pillow's own:
- HEIC/HEIF (what iPhones save): `pi-heif`, a runtime dependency (the decode-only build of
  pillow-heif, with its own libheif and libde265). `pillow-heif` is used instead if only it
  is installed.
- AVIF: Pillow itself (its wheels bundle libavif since 11.3).
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

HEIF_EXTENSIONS = frozenset({".heic", ".heif"})
AVIF_EXTENSIONS = frozenset({".avif"})
PHOTO_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
) | HEIF_EXTENSIONS | AVIF_EXTENSIONS

HEIF_MISSING = "HEIC/HEIF support is not installed: pip install pi-heif"
AVIF_MISSING = "AVIF support is not available in this Pillow: pip install 'pillow>=11.3'"

# ISO base media file "ftyp" brands (bytes 8..12) of still HEIF and AVIF images.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def _register_heif() -> str | None:
    """Register a HEIF opener with Pillow; the name of the module that provides it, or None."""
    for module in ("pi_heif", "pillow_heif"):
        try:
            plugin = __import__(module)
        except ImportError:
            continue
        # AVIF stays with Pillow's own plugin; pillow-heif >= 1.0 has no AVIF reader anyway.
        plugin.register_heif_opener()
        return module
    return None


HEIF_PLUGIN = _register_heif()


def is_photo(path: str | os.PathLike) -> bool:
    """Whether the file name has a photo extension (case-insensitive)."""
    return Path(path).suffix.lower() in PHOTO_EXTENSIONS


def heif_available() -> bool:
    """Whether Pillow can open HEIC/HEIF files right now."""
    Image.init()
    return "HEIF" in Image.OPEN


def avif_available() -> bool:
    """Whether Pillow can open AVIF files right now."""
    try:
        from PIL import AvifImagePlugin
    except ImportError:  # Pillow older than 11.2
        return False
    return bool(getattr(AvifImagePlugin, "SUPPORTED", False))


def container_kind(head: bytes) -> str | None:
    """"HEIF" or "AVIF" when the first bytes of a file are such an image's header, else None."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(len(head), 64) - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF"
    return None


def kind_of(path: str | os.PathLike, head: bytes) -> str | None:
    """"HEIF" or "AVIF" for such a file, judged by its header first and then by its name."""
    kind = container_kind(head)
    if kind is not None:
        return kind
    suffix = Path(path).suffix.lower()
    if suffix in HEIF_EXTENSIONS:
        return "HEIF"
    if suffix in AVIF_EXTENSIONS:
        return "AVIF"
    return None


def missing_decoder(path: str | os.PathLike, head: bytes) -> str | None:
    """Why `path` cannot be opened if it needs a decoder that is not available, else None."""
    kind = kind_of(path, head)
    if kind == "HEIF" and not heif_available():
        return HEIF_MISSING
    if kind == "AVIF" and not avif_available():
        return AVIF_MISSING
    return None
