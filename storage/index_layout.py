"""The layout of the FAISS files a library writes, checked before FAISS reads one.

FAISS trusts the sizes written in its files: a vector's length is read, that much memory is
allocated (and zeroed), then filled from the file. A damaged or forged `vectors.faiss` that
claims a length of terabytes, or of gigabytes the file does not hold, would exhaust memory
before any error. `check_layout` walks the file's structure for the two kinds a library writes
(an `IndexIDMap2` over `IndexFlatIP`, or over `IndexHNSWFlat`) reading only the size fields,
and refuses any size that the rest of the file cannot hold, any dimension out of range, and
any trailing bytes. Layout per faiss/impl/index_read.cpp (`read_index_header`, `READVECTOR`,
`READXBVECTOR`, `read_HNSW`).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

MAX_DIM = 65536  # = the export manifest's bound on search_dim
_HEADER = struct.Struct("<iqqq?i")  # d, ntotal, two unused int64, is_trained, metric_type


class LayoutError(ValueError):
    """The file is not a FAISS index of the kinds a library writes, or a size in it is impossible."""


def check_layout(path: str | os.PathLike) -> tuple[int, int]:
    """(dimension, vectors) of the FAISS file at `path`, after checking that every size it
    declares fits in the file; LayoutError saying what does not."""
    with open(path, "rb") as f:
        reader = _Reader(f, os.fstat(f.fileno()).st_size)
        if reader.fourcc() != b"IxM2":
            raise LayoutError("not an IndexIDMap2")
        dim, count = reader.header()
        inner_dim, inner_count = _inner(reader)
        ids = reader.vector(8)  # the id map: one int64 per vector
        if (inner_dim, inner_count) != (dim, count) or ids != count:
            raise LayoutError("the id map and the index it wraps disagree on their size")
        if reader.left():
            raise LayoutError(f"{reader.left()} bytes after the index")
    return dim, count


def _inner(reader: _Reader) -> tuple[int, int]:
    kind = reader.fourcc()
    dim, count = reader.header()
    if kind in (b"IxFI", b"IxF2"):
        floats = reader.vector(4)
        if floats != dim * count:
            raise LayoutError("the stored vectors do not match the index's size")
        return dim, count
    if kind == b"IHNf":
        reader.vector(8)  # assign_probas (double)
        reader.vector(4)  # cum_nneighbor_per_level (int)
        if reader.vector(4) != count:  # levels: one per vector
            raise LayoutError("the HNSW levels do not match the index's size")
        if reader.vector(8) != count + 1:  # offsets: one more than vectors
            raise LayoutError("the HNSW offsets do not match the index's size")
        reader.vector(4)  # neighbors (int32)
        reader.skip(5 * 4)  # entry_point, max_level, efConstruction, efSearch, upper_beam
        storage = _inner(reader)
        if storage != (dim, count):
            raise LayoutError("the HNSW graph and its vectors disagree on their size")
        return dim, count
    raise LayoutError(f"unexpected index kind {kind!r}")


class _Reader:
    def __init__(self, f, size: int):
        self.f, self.size = f, size

    def left(self) -> int:
        return self.size - self.f.tell()

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise LayoutError("the file ends early")
        return data

    def skip(self, n: int) -> None:
        if n > self.left():
            raise LayoutError("the file ends early")
        self.f.seek(n, os.SEEK_CUR)

    def fourcc(self) -> bytes:
        return self.take(4)

    def header(self) -> tuple[int, int]:
        dim, count, _, _, _, metric = _HEADER.unpack(self.take(_HEADER.size))
        if not 1 <= dim <= MAX_DIM or count < 0 or count * dim * 4 > self.left():
            raise LayoutError(f"impossible size ({count} vectors of dimension {dim} in {self.size} bytes)")
        if metric > 1:
            self.skip(4)  # metric_arg
        return dim, count

    def vector(self, item_bytes: int) -> int:
        """Skip one length-prefixed array of `item_bytes`-byte items; its length."""
        (length,) = struct.unpack("<Q", self.take(8))
        if length * item_bytes > self.left():
            raise LayoutError(f"an array of {length} items does not fit in the {self.left()} bytes left")
        self.skip(length * item_bytes)
        return length

