"""The layout of the FAISS files a library writes, checked before FAISS reads one.

FAISS trusts the sizes written in its files: a vector's length is read, that much memory is
allocated (and zeroed), then filled from the file. A damaged or forged `vectors.faiss` that
claims a length of terabytes, or of gigabytes the file does not hold, would exhaust memory
before any error. `check_layout` walks the file's structure for the kinds a library writes
(an `IndexIDMap2` over `IndexFlatIP` or `IndexHNSWFlat`, and an `IndexIVFFlat` with its
inverted lists in the file) reading only the size fields,
and refuses any size that the rest of the file cannot hold, any dimension out of range, and
any trailing bytes. Layout per faiss/impl/index_read.cpp (`read_index_header`, `READVECTOR`,
`READXBVECTOR`, `read_HNSW`, `read_ivf_header`, `read_InvertedLists`).
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
        kind = reader.fourcc()
        if kind == b"IwFl":
            dim, count = _ivf_flat(reader)
            if reader.left():
                raise LayoutError(f"{reader.left()} bytes after the index")
            return dim, count
        if kind != b"IxM2":
            raise LayoutError("not an IndexIDMap2 nor an IndexIVFFlat")
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


def _ivf_flat(reader: _Reader) -> tuple[int, int]:
    """An `IndexIVFFlat` as storage writes it (`write_ivf_header`, then `ArrayInvertedLists`):
    header, nlist, nprobe, the flat quantizer, the direct map, then the lists' sizes, codes and
    ids; every list must fit and the lists must add up to the header's count."""
    dim, count = reader.header()
    nlist, _nprobe = struct.unpack("<QQ", reader.take(16))
    if reader.fourcc() not in (b"IxFI", b"IxF2") or _inner_after_fourcc(reader) != (dim, nlist):
        raise LayoutError("the coarse quantizer does not match the index")
    reader.take(1)  # direct map type
    reader.vector(8)  # direct map array (empty as storage writes it)
    if reader.fourcc() != b"ilar":
        raise LayoutError("inverted lists of a kind a library does not write")
    lists, code_size = struct.unpack("<QQ", reader.take(16))
    if lists != nlist or code_size != dim * 4:
        raise LayoutError("the inverted lists do not match the index")
    form = reader.fourcc()
    if form == b"full":
        sizes = reader.values()
        if len(sizes) != nlist:
            raise LayoutError("the inverted lists' sizes do not match the number of lists")
    elif form == b"sprs":
        pairs = reader.values()
        if len(pairs) % 2 or any(no >= nlist for no in pairs[0::2]):
            raise LayoutError("the inverted lists' sizes name lists that do not exist")
        sizes = pairs[1::2]
    else:
        raise LayoutError(f"unexpected inverted-list sizes {form!r}")
    if sum(sizes) != count or sum(sizes) * (code_size + 8) != reader.left():
        raise LayoutError("the inverted lists do not add up to the index or to the file")
    reader.skip(reader.left())
    return dim, count


def _inner_after_fourcc(reader: _Reader) -> tuple[int, int]:
    dim, count = reader.header()
    if reader.vector(4) != dim * count:
        raise LayoutError("the stored vectors do not match the index's size")
    return dim, count


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

    def values(self) -> list[int]:
        """One length-prefixed array of uint64, read (its length checked against the file first)."""
        (length,) = struct.unpack("<Q", self.take(8))
        if length * 8 > self.left():
            raise LayoutError(f"an array of {length} items does not fit in the {self.left()} bytes left")
        return list(struct.unpack(f"<{length}Q", self.take(length * 8)))

    def vector(self, item_bytes: int) -> int:
        """Skip one length-prefixed array of `item_bytes`-byte items; its length."""
        (length,) = struct.unpack("<Q", self.take(8))
        if length * item_bytes > self.left():
            raise LayoutError(f"an array of {length} items does not fit in the {self.left()} bytes left")
        self.skip(length * item_bytes)
        return length

