"""Saving and loading the FAISS index file atomically, with a sidecar that detects staleness.

Files in the library folder:

* ``vectors.faiss`` — the index, in FAISS's own format.
* ``vectors.faiss.json`` — sidecar: the SQLite vector *generation* the index reflects, its
  kind, dimension and count, and the size, mtime and CRC-32 of the ``vectors.faiss`` it
  describes (a library copied without preserving mtimes is simply checked again; a file
  damaged on disk is never used by a writer: FAISS would load flipped bytes without a word).
* ``vectors.faiss.lock`` — an advisory lock so two processes never write the ``*.tmp``
  files at the same time.

A save streams the index into ``vectors.faiss.tmp`` through a callback that computes the CRC
as the bytes go by (one pass, nothing read back), fsyncs it, writes the sidecar the same way,
then ``os.replace``-s both and fsyncs the directory. A crash at any point leaves the old pair,
the new pair, or a new index with the old sidecar, which the size/mtime check reports (the
next writer repairs it from SQLite). A failed write (ENOSPC) happens before any rename, so the
previous files are untouched and :class:`IndexSaveError` says why.
Before FAISS reads an index file, ``index_layout`` checks that every size it declares
fits in the file: FAISS allocates what a file says before reading it.

Writers read the file through the same kind of callback, checking the CRC in the same pass.
Read-only opens (a ``photosearch query`` without a daemon) must answer in well under a second
even at a million photos: they map the file (``IO_FLAG_MMAP_IFC``: the flat vectors or the
IVF lists stay on disk until touched) and trust the sidecar's size, mtime and generation.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss

from .errors import IndexSaveError
from .index_layout import LayoutError, check_layout
from .vector_index import FLAT, IVF, IndexConfig, VectorIndex

INDEX_NAME = "vectors.faiss"
SIDECAR_NAME = "vectors.faiss.json"
LOCK_NAME = "vectors.faiss.lock"
SIDECAR_FORMAT = 3  # 3: flat, or IVF saved without its direct map (2: flat or HNSW with tombstones)

try:
    import fcntl
except ImportError:  # Windows: saves are not guarded against a second writer process
    fcntl = None


class IndexFileProblem(Exception):
    """Why the index file on disk cannot be used as is (the library then repairs it)."""


def index_bytes(folder: Path) -> int:
    path = folder / INDEX_NAME
    return path.stat().st_size if path.exists() else 0


class _ChecksumFile:
    """A file that FAISS writes into or reads from through a callback, CRC-32 as it goes."""

    def __init__(self, file) -> None:
        self.file, self.crc, self.bytes = file, 0, 0

    def write(self, data: bytes) -> int:
        self.file.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.bytes += len(data)
        return len(data)

    def read(self, size: int) -> bytes:
        data = self.file.read(size)
        self.crc = zlib.crc32(data, self.crc)
        return data


def write_index(index: faiss.Index, path: Path) -> dict[str, int]:
    """Write ``index`` to ``path`` (fsynced); its facts for the sidecar (size, mtime, CRC)."""
    with open(_private_fd(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as f:
        sink = _ChecksumFile(f)
        faiss.write_index(index, faiss.PyCallbackIOWriter(sink.write))
        f.flush()
        os.fsync(f.fileno())
    stat = path.stat()
    return {"index_size": stat.st_size, "index_mtime_ns": stat.st_mtime_ns, "index_crc32": sink.crc}


def _without_direct_map(index: faiss.Index) -> faiss.Index:
    """IVF: a view sharing ``index``'s quantizer and lists (nothing copied) without its id ->
    list hash table, which read-only opens would otherwise rebuild entry by entry (~2 s at 1M on
    a busy machine); writers rebuild it once on load. Flat indexes are written as they are."""
    if not isinstance(index, faiss.IndexIVFFlat):
        return index
    view = faiss.IndexIVFFlat(index.quantizer, index.d, index.nlist, index.metric_type)
    view.replace_invlists(index.invlists, False)  # borrowed: the view frees neither
    view.ntotal = index.ntotal
    return view


def save(folder: Path, vindex: VectorIndex) -> None:
    """Atomically replace the index file and its sidecar with ``vindex``. Only reads the
    index: queries may search it meanwhile, but nothing may change it."""
    index_path = folder / INDEX_NAME
    index_tmp = folder / (INDEX_NAME + ".tmp")
    sidecar_tmp = folder / (SIDECAR_NAME + ".tmp")
    with _exclusive(folder / LOCK_NAME):
        try:
            sidecar = {
                "format": SIDECAR_FORMAT, "generation": vindex.generation, "kind": vindex.kind,
                "dim": vindex.dim, "count": vindex.count, "trained_for": vindex.trained_for,
                **write_index(_without_direct_map(vindex.faiss_index), index_tmp),
            }
            with open(_private_fd(sidecar_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", encoding="utf-8") as f:
                json.dump(sidecar, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(index_tmp, index_path)
            os.replace(sidecar_tmp, folder / SIDECAR_NAME)
            _fsync_dir(folder)
        except (OSError, RuntimeError) as exc:
            for tmp in (index_tmp, sidecar_tmp):
                _unlink_quietly(tmp)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise IndexSaveError(
                f"could not save the vector index to {index_path}: {reason}; the previous "
                "index file was left as it was (free some disk space and save again; the "
                "vectors themselves are safe in the database)"
            ) from exc


def remove(folder: Path) -> None:
    """Delete the saved index (the library holds no vectors). Index first: a crash in between
    leaves a sidecar without index, which reads as "missing"."""
    with _exclusive(folder / LOCK_NAME):
        for name in (INDEX_NAME, SIDECAR_NAME):
            try:
                (folder / name).unlink(missing_ok=True)
            except OSError as exc:
                raise IndexSaveError(f"could not delete {folder / name}: {exc.strerror}") from exc
        _fsync_dir(folder)


def load(folder: Path, config: IndexConfig, *, read_only: bool = False) -> VectorIndex:
    """The saved index; raises :class:`IndexFileProblem` if it is missing or unusable.

    ``read_only``: map the file instead of reading it, without the CRC (see above); the index
    must then never be changed.
    """
    index_path = folder / INDEX_NAME
    if not index_path.exists():
        raise IndexFileProblem("missing")
    try:
        sidecar = json.loads((folder / SIDECAR_NAME).read_text(encoding="utf-8"))
        found = sidecar.get("format") if isinstance(sidecar, dict) else type(sidecar).__name__
        if found != SIDECAR_FORMAT:
            raise ValueError(f"format {found!r}, expected {SIDECAR_FORMAT}")
        generation, kind = int(sidecar["generation"]), sidecar["kind"]
        count, trained_for = int(sidecar["count"]), int(sidecar["trained_for"])
        expected = (int(sidecar["index_size"]), int(sidecar["index_mtime_ns"]))
        crc = int(sidecar["index_crc32"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexFileProblem(f"sidecar unreadable ({exc!r})") from exc
    stat = index_path.stat()
    if (stat.st_size, stat.st_mtime_ns) != expected or kind not in (FLAT, IVF):
        raise IndexFileProblem("index file does not match its sidecar (interrupted save?)")
    try:
        check_layout(index_path)  # every size in it fits the file: FAISS allocates what they say
        if read_only:
            index = faiss.read_index(str(index_path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        else:
            with open(index_path, "rb") as f:
                source = _ChecksumFile(f)
                index = faiss.read_index(faiss.PyCallbackIOReader(source.read))
                source.read(1)  # nothing may follow the index
            if source.crc != crc:
                raise IndexFileProblem("corrupt (checksum mismatch: the file changed on disk)")
    except (OSError, RuntimeError, LayoutError) as exc:
        raise IndexFileProblem(f"corrupt ({exc})") from exc
    problem = _shape_problem(index, kind, count)
    if problem:
        raise IndexFileProblem(f"corrupt ({problem})")
    if kind == IVF and not read_only:  # O(1) removes by id (read-only opens never remove)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return VectorIndex(index, kind, config, generation, trained_for)  # read_index gives the subclass


def _shape_problem(index: faiss.Index, kind: str, count: int) -> str | None:
    """What makes ``index`` not the ``kind`` of index storage writes (None when it is)."""
    if index.metric_type != faiss.METRIC_INNER_PRODUCT or index.ntotal != count:
        return "not the inner-product index of the size the sidecar records"
    if kind == FLAT:
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
        if not isinstance(inner, faiss.IndexFlatIP) or index.id_map.size() != count or inner.ntotal != count:
            return "not an IDMap2 over IndexFlatIP"
        return None
    index = faiss.downcast_index(index)
    if not isinstance(index, faiss.IndexIVFFlat) or index.direct_map.type != faiss.DirectMap.NoMap:
        return "not an IndexIVFFlat as storage writes it (no direct map)"
    if index.invlists.compute_ntotal() != count or index.quantizer.ntotal != index.nlist:
        return "the inverted lists do not add up to the index"
    return None


def file_facts(path: Path) -> dict[str, int]:
    """What the sidecar records about an index file to recognise it: size, mtime, CRC-32."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            crc = zlib.crc32(chunk, crc)
    stat = path.stat()
    return {"index_size": stat.st_size, "index_mtime_ns": stat.st_mtime_ns, "index_crc32": crc}


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Keep a second process from writing the same ``*.tmp`` files at the same time."""
    if fcntl is None:
        yield
        return
    with open(_private_fd(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _private_fd(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # also a file left 0644 by an older version
    return fd


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
