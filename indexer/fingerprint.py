"""Content fingerprints: the identity of a photo that survives moves and renames.

The scanner compares the fingerprint of a newly seen file with the fingerprints of photos
that vanished from their old paths; a match is a move, and the stored vector is kept.

A fingerprint is "<size in hex>-<blake2b-128 of the whole content in hex>". The size prefix
makes mismatches cheap to see by eye and keeps two same-hash files of different lengths
(impossible in practice) apart anyway. The content is streamed, so memory stays flat for
any file size.
"""

from __future__ import annotations

import hashlib
import os

CHUNK_SIZE = 1 << 20  # 1 MiB reads: large enough to be I/O-bound, small enough to stay flat
DIGEST_SIZE = 16  # bytes; 128 bits makes accidental collisions in one library negligible


def file_fingerprint(path: str | os.PathLike, chunk_size: int = CHUNK_SIZE) -> str:
    """Hash the file's content; raises OSError when it cannot be read."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return f"{size:x}-{digest.hexdigest()}"
