"""Embedder (batched, decoding ahead in threads) and content fingerprints."""

import numpy as np
import pytest

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.fingerprint import file_fingerprint
from tests.indexer.stand_ins import ColourModel, make_photo


def test_vectors_and_errors_cover_every_path(tmp_path, model):
    paths = [make_photo(tmp_path / f"{i}.jpg", (i * 25, 255 - i * 25, 0)) for i in range(9)]
    (tmp_path / "bad.png").write_text("nope")
    paths.insert(4, tmp_path / "bad.png")
    with Embedder(model, batch_size=4, workers=3) as embedder:
        vectors, errors = embedder.embed_files(paths)
    assert errors == {str(tmp_path / "bad.png"): "not a recognised image format"}
    assert list(vectors) == [str(p) for p in paths if p.suffix == ".jpg"]  # input order
    assert all(v.dtype == np.float32 and v.shape == (4,) for v in vectors.values())
    assert model.images_encoded == 9
    # Same colour in, same vector out, whatever the batch it landed in.
    with Embedder(ColourModel(), batch_size=1) as embedder:
        again, _ = embedder.embed_files(paths[:3])
    for path, vector in again.items():
        np.testing.assert_allclose(vector, vectors[path], atol=1e-6)


def test_embed_photos_keeps_size_and_date(tmp_path, model):
    path = make_photo(tmp_path / "wide.png", size=(50, 20))
    with Embedder(model) as embedder:
        photos, errors = embedder.embed_photos([path])
    photo = photos[str(path)]
    assert (photo.width, photo.height, photo.taken_at, errors) == (50, 20, None, {})


class _BrokenModel(ColourModel):
    def encode_search_images(self, images):
        out = super().encode_search_images(images)
        out[0] = np.nan
        return out


def test_non_finite_vectors_become_errors(tmp_path):
    paths = [make_photo(tmp_path / f"{i}.jpg", (i, i, i)) for i in range(2)]
    with Embedder(_BrokenModel(), batch_size=2) as embedder:
        vectors, errors = embedder.embed_files(paths)
    assert errors == {str(paths[0]): "model produced a non-finite vector"}
    assert list(vectors) == [str(paths[1])]


def test_a_wrong_output_shape_is_a_bug_not_a_bad_photo(tmp_path):
    class Wrong(ColourModel):
        search_dim = 5

    with Embedder(Wrong()) as embedder, pytest.raises(ValueError, match="shape"):
        embedder.embed_files([make_photo(tmp_path / "a.jpg")])


@pytest.mark.slow
def test_real_miniclip_tiny_preset(tmp_path):
    model_module = pytest.importorskip("photosearch.miniclip.model")
    config = pytest.importorskip("photosearch.miniclip.config")
    model = model_module.MiniCLIP(config.PRESETS["tiny"]).eval()
    paths = [make_photo(tmp_path / f"{i}.jpg", (i * 80, 40, 200), (300, 200)) for i in range(3)]
    with Embedder(model, batch_size=2) as embedder:
        assert embedder.target == model.config.image_size
        vectors, errors = embedder.embed_files(paths)
    assert errors == {}
    assert {v.shape for v in vectors.values()} == {(model.search_dim,)}


def test_fingerprint_follows_content_not_name(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * 3_000_000)
    b = tmp_path / "b.bin"
    b.write_bytes(b"x" * 3_000_000)
    c = tmp_path / "c.bin"
    c.write_bytes(b"x" * 2_999_999 + b"y")
    assert file_fingerprint(a) == file_fingerprint(b) != file_fingerprint(c)
    assert file_fingerprint(a, chunk_size=4096) == file_fingerprint(a)  # streamed
    assert file_fingerprint(a).startswith(f"{3_000_000:x}-")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_fingerprint(empty).startswith("0-")
    with pytest.raises(OSError):
        file_fingerprint(tmp_path / "missing")
