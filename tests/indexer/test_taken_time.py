"""Taken-at: EXIF DateTimeOriginal with and without OffsetTimeOriginal, missing, malformed; else mtime."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from PIL import ExifTags, Image

from photosearch.indexer.images import load_photo
from photosearch.indexer.taken_time import from_mtime, parse_exif_datetime, parse_exif_offset, taken_fields


def exif_photo(path, date: str | None = None, offset: str | None = None, digitized: str | None = None):
    exif = Image.Exif()
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if date is not None:
        sub[ExifTags.Base.DateTimeOriginal] = date
    if offset is not None:
        sub[0x9011] = offset  # OffsetTimeOriginal
    if digitized is not None:
        sub[ExifTags.Base.DateTimeDigitized] = digitized
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, exif=exif)
    return path


def test_exif_time_with_its_offset(tmp_path):
    photo = load_photo(exif_photo(tmp_path / "a.jpg", "2023:06:14 18:30:05", "+02:00"))
    assert (photo.taken_at, photo.taken_offset) == (datetime(2023, 6, 14, 18, 30, 5), 120)
    fields = taken_fields(photo, mtime=0.0)
    assert fields == {"taken_at": datetime(2023, 6, 14, 18, 30, 5), "taken_offset": 120, "taken_source": "exif"}


def test_exif_time_without_offset_is_a_local_time_of_unknown_zone(tmp_path):
    photo = load_photo(exif_photo(tmp_path / "a.jpg", "2021:07:04 12:34:56"))
    assert (photo.taken_at, photo.taken_offset) == (datetime(2021, 7, 4, 12, 34, 56), None)


def test_digitized_time_stands_in_for_a_missing_original(tmp_path):
    photo = load_photo(exif_photo(tmp_path / "a.jpg", digitized="2020:01:02 03:04:05"))
    assert photo.taken_at == datetime(2020, 1, 2, 3, 4, 5)


@pytest.mark.parametrize("raw", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2023-06-14 18:30:05", "yesterday",
                                 "2023:13:40 99:00:00", ""])
def test_malformed_exif_time_falls_back_to_the_file_time(tmp_path, raw):
    path = exif_photo(tmp_path / "a.jpg", raw, "+02:00")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    photo = load_photo(path)
    assert photo.taken_at is None
    fields = taken_fields(photo, os.stat(path).st_mtime)
    assert fields["taken_source"] == "mtime" and fields["taken_at"] == datetime.fromtimestamp(1_700_000_000)


def test_no_exif_at_all_means_the_file_time_in_this_zone(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    photo = load_photo(path)
    assert photo.taken_at is None and photo.taken_offset is None
    when, offset = from_mtime(1_700_000_000.5)
    assert when == datetime.fromtimestamp(1_700_000_000.5)
    assert offset == datetime.fromtimestamp(1_700_000_000).astimezone().utcoffset().total_seconds() // 60


@pytest.mark.parametrize(("raw", "minutes"), [("+02:00", 120), ("-05:30", -330), ("+00:00", 0), (b"+09:00\x00", 540),
                                              ("02:00", None), ("+2:00", None), ("+25:00", None), ("+01:75", None),
                                              ("   :  ", None), (None, None), (7, None)])
def test_offsets(raw, minutes):
    assert parse_exif_offset(raw) == minutes


def test_exif_datetime_as_bytes_with_padding():
    assert parse_exif_datetime(b"2019:12:31 23:59:59\x00") == datetime(2019, 12, 31, 23, 59, 59)
    assert parse_exif_datetime(None) is None and parse_exif_datetime(12) is None
