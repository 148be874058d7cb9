"""Photo decoding: every colour mode, orientation, metadata, and every kind of bad file."""

import struct
import zlib
from datetime import datetime

import numpy as np
import pytest
from PIL import ExifTags, Image

from photosearch.indexer.images import (
    PhotoDecodeError,
    SUPPORTED_EXTENSIONS,
    is_supported,
    load_photo,
    to_rgb,
)


def _pixel(photo, xy=(0, 0)):
    return photo.image.getpixel(xy)


def _close(rgb, expected, tol=3):
    return all(abs(a - b) <= tol for a, b in zip(rgb, expected))


# ---- colour modes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, make, expected",
    [
        ("rgb.png", lambda: Image.new("RGB", (8, 8), (10, 200, 30)), (10, 200, 30)),
        ("grey.png", lambda: Image.new("L", (8, 8), 77), (77, 77, 77)),
        ("bits.png", lambda: Image.new("1", (8, 8), 1), (255, 255, 255)),
        ("bits.bmp", lambda: Image.new("1", (8, 8), 0), (0, 0, 0)),
        ("rgba.png", lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 0)), (255, 255, 255)),
        ("rgba_half.png", lambda: Image.new("RGBA", (8, 8), (0, 0, 0, 128)), (127, 127, 127)),
        ("la.png", lambda: Image.new("LA", (8, 8), (0, 0)), (255, 255, 255)),
        ("cmyk.jpg", lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), (255, 0, 0)),
        ("cmyk.tif", lambda: Image.new("CMYK", (8, 8), (0, 0, 0, 255)), (0, 0, 0)),
        ("grey16.png", lambda: Image.new("I;16", (8, 8), 65535), (255, 255, 255)),
        ("grey16_mid.png", lambda: Image.new("I;16", (8, 8), 32896), (128, 128, 128)),
        ("grey16.tif", lambda: Image.new("I;16", (8, 8), 257 * 40), (40, 40, 40)),
        ("int32.tif", lambda: Image.new("I", (8, 8), 65535), (255, 255, 255)),
        ("float.tif", lambda: Image.new("F", (8, 8), 0.5), (128, 128, 128)),
        ("pic.webp", lambda: Image.new("RGB", (8, 8), (0, 0, 255)), (0, 0, 255)),
        ("pic.gif", lambda: Image.new("RGB", (8, 8), (0, 255, 0)), (0, 255, 0)),
    ],
)
def test_every_mode_becomes_rgb(tmp_path, name, make, expected):
    path = tmp_path / name
    kwargs = {"lossless": True} if name.endswith(".webp") else {}
    make().save(path, **kwargs)
    photo = load_photo(path)
    assert photo.image.mode == "RGB"
    assert (photo.width, photo.height) == (8, 8)
    tol = 12 if name.endswith(".jpg") else 1
    assert _close(_pixel(photo), expected, tol), _pixel(photo)


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((7, 7), 1)
    for name in ("pal.png", "pal.gif"):
        img.save(tmp_path / name, transparency=0)
        photo = load_photo(tmp_path / name)
        assert _pixel(photo) == (255, 255, 255)  # transparent red index -> white
        assert _pixel(photo, (7, 7)) == (0, 0, 255)


@pytest.mark.parametrize(
    "img, expected",
    [
        (Image.new("La", (2, 2), (200, 255)), (200, 200, 200)),
        (Image.new("RGBa", (2, 2), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("PA", (2, 2), (0, 0)), (255, 255, 255)),
        (Image.new("F", (2, 2), 1000.0), (0, 0, 0)),  # flat out-of-range data: no NaN
        (Image.new("YCbCr", (2, 2), (255, 128, 128)), (255, 255, 255)),
    ],
)
def test_to_rgb_handles_modes_that_files_rarely_hold(img, expected):
    out = to_rgb(img)
    assert out.mode == "RGB"
    assert _close(out.getpixel((0, 0)), expected, 2), out.getpixel((0, 0))


def test_wide_range_int_and_float_greyscale_are_stretched_not_clipped():
    ints = Image.fromarray(np.array([[-1000, 0], [500_000, 1_000_000]], dtype=np.int32), "I")
    assert [to_rgb(ints).getpixel(xy)[0] for xy in [(0, 0), (1, 1)]] == [0, 255]
    floats = Image.fromarray(np.array([[-2.0, 0.0], [1.0, 2.0]], dtype=np.float32), "F")
    assert [to_rgb(floats).getpixel(xy)[0] for xy in [(0, 0), (1, 1)]] == [0, 255]


# ---- geometry, metadata, frames -----------------------------------------------------


def test_exif_orientation_6_comes_out_upright_with_swapped_dims(tmp_path):
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # stored: left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "portrait.jpg"
    stored.save(path, exif=exif, quality=95)
    photo = load_photo(path)
    assert (photo.width, photo.height) == (20, 40)
    assert photo.image.size == (20, 40)
    assert _close(_pixel(photo, (10, 5)), (255, 0, 0), 40)  # the left side is now on top
    assert _close(_pixel(photo, (10, 35)), (0, 0, 255), 40)


def test_taken_at_comes_from_exif_date_time_original(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2021:07:04 12:34:56"
    path = tmp_path / "dated.jpg"
    Image.new("RGB", (8, 8)).save(path, exif=exif)
    assert load_photo(path).taken_at == datetime(2021, 7, 4, 12, 34, 56)
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (8, 8)).save(plain)
    assert load_photo(plain).taken_at is None


def test_garbage_exif_date_is_ignored(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "0000:00:00 00:00:00"
    path = tmp_path / "zero_date.jpg"
    Image.new("RGB", (8, 8)).save(path, exif=exif)
    assert load_photo(path).taken_at is None


def test_big_jpeg_is_decoded_reduced_but_reports_full_size(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (90, 90, 90)).save(path)
    photo = load_photo(path, target=224)
    assert (photo.width, photo.height) == (4000, 3000)
    assert min(photo.image.size) >= 448
    assert photo.image.size[0] <= 1000  # DCT scaling happened (1/4 of 4000)


def test_big_png_is_box_reduced_keeping_twice_the_target(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (2000, 1000), (1, 2, 3)).save(path)
    photo = load_photo(path, target=224)
    assert (photo.width, photo.height) == (2000, 1000)
    assert photo.image.size == (1000, 500)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    assert _close(_pixel(load_photo(path)), (255, 0, 0), 2)


def test_upper_case_extension_is_supported_and_decoded(tmp_path):
    path = tmp_path / "IMG_0001.JPG"
    Image.new("RGB", (8, 8), (0, 0, 0)).save(path, format="JPEG")
    assert is_supported(path)
    assert load_photo(path).image.mode == "RGB"


def test_extension_filter():
    expected = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
    assert expected <= SUPPORTED_EXTENSIONS
    assert is_supported("a/b/c.TiFf") and is_supported("x.jpeg")
    assert not any(is_supported(name) for name in ["notes.txt", "jpg", "x.jpg.part"])


# ---- bad files ----------------------------------------------------------------------


def _reason(path, **kwargs):
    with pytest.raises(PhotoDecodeError) as info:
        load_photo(path, **kwargs)
    assert info.value.path == str(path)
    return info.value.reason


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    data_path = tmp_path / "full.jpg"
    Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(data_path)
    data = data_path.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _reason(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert _reason(path) == "empty file"


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo\n" * 20)
    assert _reason(path) == "not a recognised image format"


def test_random_bytes_behind_a_real_header(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert _reason(path)  # any short reason, but a PhotoDecodeError, not a crash


def test_missing_file(tmp_path):
    assert _reason(tmp_path / "nope.jpg") == "file not found"


def _png_header_only(path, width, height):
    """A PNG that declares width x height pixels but is ~60 bytes on disk."""

    def chunk(kind, body):
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00")
    chunks = chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    huge = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert huge.stat().st_size < 100
    assert "too large" in _reason(huge)
    # Between our limit and Pillow's hard error: our own header check says no.
    large = _png_header_only(tmp_path / "large.png", 12_000, 10_000)
    assert "too large" in _reason(large)
    assert "too large" in _reason(_png_header_only(tmp_path / "s.png", 100, 100), max_pixels=5000)


def test_directory_named_like_a_photo(tmp_path):
    folder = tmp_path / "album.jpg"
    folder.mkdir()
    assert _reason(folder)
