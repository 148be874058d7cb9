"""Checking files against known sha256 digests, remembering checks that passed.

Hashing tens of megabytes costs ~0.1 s, which a cold `photosearch query` feels, so a successful
check is remembered in a stamp under the cache directory, keyed by the file's path, size, mtime,
ctime and inode: a replaced or edited file is hashed again, also when its mtime was put back
(writing a file always moves its ctime). A read-only cache only means hashing
every time. The idea follows open_clip's pretrained registry, which pins each weight file's hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from photosearch.miniclip.cache_dir import default_cache_dir
from photosearch.miniclip.errors import CheckpointError

STAMP_NAME = "verified-files.json"


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks). Raises OSError."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str, what: str) -> None:
    """CheckpointError unless the file at `path` hashes to `expected` (or did, unchanged, before).

    `what` names the file in the message, e.g. "the all-MiniLM-L6-v2 weights".
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc.strerror}") from None
    real = str(path.resolve())
    key = f"{real}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}"
    stamp = default_cache_dir() / STAMP_NAME
    try:
        remembered = json.loads(stamp.read_text())
    except (OSError, ValueError):
        remembered = {}
    if not isinstance(remembered, dict):
        remembered = {}
    if remembered.get(key) == expected:
        return
    try:
        digest = sha256_of(path)
    except OSError as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc.strerror}") from None
    if digest != expected:
        raise CheckpointError(f"{path} is not {what}: its sha256 is {digest}, expected {expected} "
                              "(a damaged or replaced file; reinstall the package that provides it)")
    # One entry a file: the latest check replaces older ones, and files gone are forgotten.
    remembered = {k: v for k, v in remembered.items()
                  if k.split("|", 1)[0] != real and os.path.exists(k.split("|", 1)[0])}
    remembered[key] = expected
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(remembered))
        tmp.replace(stamp)
    except OSError:
        pass
