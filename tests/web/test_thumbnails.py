"""The thumbnail cache on its own: keyed by id + fingerprint, stale ones dropped, never fatal."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from photosearch.indexer.images import PhotoDecodeError
from photosearch.indexer.thumbnails import SIZE, Thumbnails
from tests.daemon.conftest import draw


def test_a_new_fingerprint_replaces_the_old_thumbnail(tmp_path):
    photo = draw(tmp_path / "p.png", "red", "circle", size=600)
    thumbs = Thumbnails(tmp_path / "lib")
    first = thumbs.jpeg(7, "1a-abc", photo)
    assert thumbs.path_for(7, "1a-abc").read_bytes() == first
    with Image.open(io.BytesIO(first)) as image:
        assert image.size == (SIZE, SIZE)
    thumbs.jpeg(7, "1b-def", photo)
    assert [p.name for p in (tmp_path / "lib" / "thumbnails").iterdir()] == ["7-1b-def.jpg"]
    assert thumbs.made == 2


def test_odd_fingerprints_make_safe_file_names(tmp_path):
    path = Thumbnails(tmp_path).path_for(3, "../../x/evil name")
    assert path.parent == tmp_path / "thumbnails" and path.name.startswith("3-") and "/" not in path.name[2:]


def test_an_unwritable_cache_still_gives_thumbnails(tmp_path):
    (tmp_path / "thumbnails").write_text("a file where the folder should be")
    photo = draw(tmp_path / "p.png", "blue", "square")
    thumbs = Thumbnails(tmp_path)
    assert thumbs.jpeg(1, "ff-00", photo) == thumbs.jpeg(1, "ff-00", photo)
    assert thumbs.made == 2


def test_a_broken_photo_is_a_decode_error(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(PhotoDecodeError):
        Thumbnails(tmp_path).jpeg(1, "ff-00", tmp_path / "bad.jpg")
    assert not (tmp_path / "thumbnails").exists() or not list((tmp_path / "thumbnails").iterdir())
