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
def test_real_miniclip_tiny_preset_through_onnx_runtime(tmp_path):
    """The real serving model: a tiny MiniCLIP exported and run by ONNX Runtime, photos decoded
    by the embedder's threads, vectors equal to the torch model's."""
    import torch

    from photosearch.miniclip.checkpoint import save_checkpoint
    from photosearch.miniclip.config import PRESETS
    from photosearch.miniclip.export import export_model
    from photosearch.miniclip.model import MiniCLIP
    from photosearch.miniclip.runtime import load_search_model
    from photosearch.miniclip.tokenizer import WordTokenizer
    from photosearch.indexer.images import load_photo

    torch.manual_seed(0)
    model = MiniCLIP(PRESETS["tiny"], WordTokenizer.build(["a red circle"], max_len=8)).eval()
    checkpoint = tmp_path / "tiny.safetensors"
    save_checkpoint(model, checkpoint)
    export_model(model, checkpoint)
    paths = [make_photo(tmp_path / f"{i}.jpg", (i * 80, 40, 200), (300, 200)) for i in range(3)]
    served = load_search_model(checkpoint)
    with Embedder(served, batch_size=2) as embedder:
        assert embedder.target == model.config.image_size == 64
        assert served.image_tower_ready  # built by the embedder
        vectors, errors = embedder.embed_files(paths)
    assert errors == {}
    images = [load_photo(p, target=32).image for p in paths]
    want = model.encode_search_images(torch.stack([model.image_transform(i) for i in images]))
    got = np.stack([vectors[str(p)] for p in paths])
    cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    assert got.shape == (3, model.search_dim) and cos.min() > 0.9999


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
