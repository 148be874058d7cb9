"""iPhone photos (HEIC/HEIF) and AVIF: decoded by default, and never skipped in silence.

Files are written on the fly: HEIC with pillow-heif's encoder (the test extra; the runtime
only has the decode-only pi-heif), AVIF with Pillow's own writer.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from PIL import ExifTags, Image

from photosearch.indexer import formats
from photosearch.indexer.images import PhotoDecodeError, is_supported, load_photo
from photosearch.storage import INDEXED

pillow_heif = pytest.importorskip("pillow_heif", reason="writing HEIC needs pillow-heif (test extra)")

RED, BLUE = (220, 20, 20), (20, 20, 220)


def upright_picture(size=(64, 96)) -> Image.Image:
    """A portrait picture: red top half, blue bottom half."""
    img = Image.new("RGB", size, BLUE)
    img.paste(RED, (0, 0, size[0], size[1] // 2))
    return img


def write_heic(path, img: Image.Image, exif: Image.Exif | None = None):
    heif = pillow_heif.from_pillow(img)
    heif.save(path, quality=90, **({"exif": exif.tobytes()} if exif is not None else {}))
    return path


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2023:07:14 18:30:05"
    return exif


def without_heif(monkeypatch):
    """Pillow as if no HEIF plugin were installed."""
    Image.init()  # every other plugin registered first, so none lands in the patched list only
    monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
    monkeypatch.setattr(Image, "ID", [name for name in Image.ID if name != "HEIF"])


def without_avif(monkeypatch):
    from PIL import AvifImagePlugin

    monkeypatch.setattr(AvifImagePlugin, "SUPPORTED", False)


def _close(rgb, expected, tol=40):
    return all(abs(a - b) <= tol for a, b in zip(rgb, expected))


# ---- what counts as a photo ---------------------------------------------------------


def test_photo_extensions_are_fixed_and_include_iphone_and_avif():
    assert formats.PHOTO_EXTENSIONS == {
        ".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif"
    }
    assert all(is_supported(name) for name in ["IMG_0001.HEIC", "a.heif", "b.AVIF", "c.Heic"])


def test_heic_is_a_photo_even_without_its_plugin(monkeypatch):
    without_heif(monkeypatch)
    assert not formats.heif_available()
    assert is_supported("IMG_0001.HEIC")


def test_runtime_decoders_are_present():
    assert formats.HEIF_PLUGIN in ("pi_heif", "pillow_heif") and formats.heif_available()
    assert formats.avif_available()


# ---- decoding -----------------------------------------------------------------------


def test_heic_decodes_with_taken_at(tmp_path):
    path = write_heic(tmp_path / "IMG_0001.HEIC", upright_picture(), camera_exif())
    photo = load_photo(path)
    assert photo.image.mode == "RGB" and (photo.width, photo.height) == (64, 96)
    assert photo.taken_at == datetime(2023, 7, 14, 18, 30, 5)
    assert _close(photo.image.getpixel((32, 5)), RED) and _close(photo.image.getpixel((32, 90)), BLUE)


@pytest.mark.parametrize("orientation, stored", [
    (6, Image.Transpose.ROTATE_90),   # shot in portrait, stored sideways: display turns it 90 CW
    (8, Image.Transpose.ROTATE_270),  # the other way round
    (3, Image.Transpose.ROTATE_180),
])
def test_heic_with_exif_orientation_comes_out_upright(tmp_path, orientation, stored):
    sideways = upright_picture().transpose(stored)
    path = write_heic(tmp_path / "portrait.heic", sideways, camera_exif(orientation))
    photo = load_photo(path)
    assert (photo.width, photo.height) == (64, 96) and photo.image.size == (64, 96)
    assert _close(photo.image.getpixel((32, 5)), RED), photo.image.getpixel((32, 5))
    assert _close(photo.image.getpixel((32, 90)), BLUE), photo.image.getpixel((32, 90))


def test_avif_decodes(tmp_path):
    path = tmp_path / "still.avif"
    upright_picture().save(path, quality=90)
    photo = load_photo(path)
    assert (photo.width, photo.height) == (64, 96)
    assert _close(photo.image.getpixel((32, 5)), RED) and _close(photo.image.getpixel((32, 90)), BLUE)


# ---- what cannot be read fails with a reason ----------------------------------------


def _reason(path) -> str:
    with pytest.raises(PhotoDecodeError) as info:
        load_photo(path)
    return info.value.reason


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_truncated_heic_fails_with_a_reason(tmp_path, cut):
    good = write_heic(tmp_path / "good.heic", upright_picture(), camera_exif()).read_bytes()
    path = tmp_path / "IMG_0002.HEIC"
    path.write_bytes(good[: int(len(good) * cut)])
    assert "HEIF" in _reason(path)


def test_not_heif_content_with_heic_name_fails_with_a_reason(tmp_path):
    path = tmp_path / "IMG_0003.heic"
    path.write_bytes(b"\x00\x11garbage" * 400)
    assert "HEIF" in _reason(path)


def test_truncated_avif_fails_with_a_reason(tmp_path):
    good = tmp_path / "good.avif"
    upright_picture((256, 256)).save(good, quality=90)
    path = tmp_path / "cut.avif"
    path.write_bytes(good.read_bytes()[:200])
    assert "AVIF" in _reason(path)


def test_heic_without_plugin_fails_with_install_hint(tmp_path, monkeypatch):
    path = write_heic(tmp_path / "IMG_0004.HEIC", upright_picture())
    without_heif(monkeypatch)
    assert _reason(path) == formats.HEIF_MISSING and "pip install pi-heif" in formats.HEIF_MISSING


def test_heic_content_under_a_jpg_name_without_plugin_says_heif(tmp_path, monkeypatch):
    # Some exports keep .jpg on what is really HEIC: the header decides, not the name.
    path = write_heic(tmp_path / "export.jpg", upright_picture())
    without_heif(monkeypatch)
    assert _reason(path) == formats.HEIF_MISSING


def test_avif_without_decoder_fails_with_upgrade_hint(tmp_path, monkeypatch):
    path = tmp_path / "still.AVIF"
    upright_picture().save(path, format="AVIF", quality=90)
    without_avif(monkeypatch)
    assert _reason(path) == formats.AVIF_MISSING


# ---- through the scanner: counted as failed, then indexed once the plugin is back ---


def test_scan_counts_heic_without_plugin_as_failed_then_indexes_it(tmp_path, scanner, monkeypatch):
    write_heic(tmp_path / "IMG_0005.HEIC", upright_picture())
    upright_picture().save(tmp_path / "IMG_0006.avif", quality=90)
    with monkeypatch.context() as patch:
        without_heif(patch)
        without_avif(patch)
        report = scanner.scan([tmp_path])
    assert (report.added, report.failed) == (0, 2)
    reasons = dict(report.failures)
    assert reasons[str(tmp_path / "IMG_0005.HEIC")] == formats.HEIF_MISSING
    assert reasons[str(tmp_path / "IMG_0006.avif")] == formats.AVIF_MISSING
    again = scanner.scan([tmp_path])  # decoders back (installed since): retried, not "unchanged"
    assert (again.added + again.updated, again.failed) == (2, 0)
    assert scanner.lib.get_by_path(str(tmp_path / "IMG_0005.HEIC")).status == INDEXED
