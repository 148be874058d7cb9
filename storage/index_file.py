"""Saving and loading the FAISS index file atomically, with a sidecar that detects staleness.

Files in the library folder:

* ``vectors.faiss`` — the index, written by ``faiss.write_index``.
* ``vectors.faiss.json`` — sidecar: the SQLite vector *generation* the index reflects, its
  kind and tombstones, and the size, mtime and CRC-32 of the ``vectors.faiss`` it describes
  (so a library copied without preserving mtimes is simply rebuilt once, and a file damaged
  on disk is never read: FAISS would load flipped bytes in the vectors without a word).
* ``vectors.faiss.lock`` — an advisory lock so two processes never write the ``*.tmp``
  files at the same time.

Writers (``index``, ``watch``) read the whole file and check its CRC before using it. Read-only
opens (a ``photosearch query`` without a daemon) must answer in well under a second even at a
million photos, where the CRC alone reads 2.8 GB: they map the file's vectors into memory
instead of reading them (``IO_FLAG_MMAP_IFC``), trust the sidecar's size, mtime and generation,
and check only what could crash FAISS: that every HNSW graph link points at a real vector.
Both check first that every size the file declares fits in it (``index_layout``): FAISS
allocates what a file says before reading it. A
damaged vector then gives a wrong score until the next writer notices and rebuilds the file.

A save writes both as ``*.tmp`` files, fsyncs them, then ``os.replace``-s the index and the
sidecar and fsyncs the directory. A crash at any point leaves either the old pair, the new
pair, or a new index with the old sidecar, which the size/mtime check reports as a mismatch
(and the library rebuilds from SQLite). A failed write (e.g. ENOSPC) happens before any
rename, so the previous files are untouched and :class:`IndexSaveError` says why.
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
from .privacy import make_private
from .vector_index import FLAT, HNSW, IndexConfig, VectorIndex

INDEX_NAME = "vectors.faiss"
SIDECAR_NAME = "vectors.faiss.json"
LOCK_NAME = "vectors.faiss.lock"
SIDECAR_FORMAT = 2  # 2: with the index file's CRC-32
CHUNK = 16 << 20  # bytes read at a time for the checksum

try:
    import fcntl
except ImportError:  # Windows: saves are not guarded against a second writer process
    fcntl = None


class IndexFileProblem(Exception):
    """Why the index file on disk cannot be used as is (the library then rebuilds it)."""


def index_bytes(folder: Path) -> int:
    path = folder / INDEX_NAME
    return path.stat().st_size if path.exists() else 0


def save(folder: Path, vindex: VectorIndex) -> None:
    """Atomically replace the index file and its sidecar with ``vindex``."""
    index_path = folder / INDEX_NAME
    sidecar_path = folder / SIDECAR_NAME
    index_tmp = folder / (INDEX_NAME + ".tmp")
    sidecar_tmp = folder / (SIDECAR_NAME + ".tmp")
    with _exclusive(folder / LOCK_NAME):
        try:
            faiss.write_index(vindex.faiss_index, str(index_tmp))
            make_private(index_tmp)  # FAISS creates it as the umask says
            _fsync(index_tmp)
            sidecar = {
                "format": SIDECAR_FORMAT,
                "generation": vindex.generation,
                "kind": vindex.kind,
                "dim": vindex.dim,
                "count": vindex.count,
                "tombstones": vindex.tombstones,
                **file_facts(index_tmp),
            }
            with open(_private_fd(sidecar_tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", encoding="utf-8") as f:
                json.dump(sidecar, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(index_tmp, index_path)
            os.replace(sidecar_tmp, sidecar_path)
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
    leaves a sidecar without index, which reads as "missing" and is rebuilt."""
    with _exclusive(folder / LOCK_NAME):
        for name in (INDEX_NAME, SIDECAR_NAME):
            try:
                (folder / name).unlink(missing_ok=True)
            except OSError as exc:
                raise IndexSaveError(f"could not delete {folder / name}: {exc.strerror}") from exc
        _fsync_dir(folder)


def load(folder: Path, config: IndexConfig, *, read_only: bool = False) -> VectorIndex:
    """The saved index; raises :class:`IndexFileProblem` if it is missing or unusable.

    ``read_only``: map the vectors instead of reading them, without the CRC pass (see above);
    the index must then never be changed.
    """
    index_path = folder / INDEX_NAME
    if not index_path.exists():
        raise IndexFileProblem("missing")
    try:
        sidecar = json.loads((folder / SIDECAR_NAME).read_text(encoding="utf-8"))
        found = sidecar.get("format") if isinstance(sidecar, dict) else type(sidecar).__name__
        if found != SIDECAR_FORMAT:
            raise ValueError(f"format {found!r}, expected {SIDECAR_FORMAT}")
        generation = int(sidecar["generation"])
        kind = sidecar["kind"]
        tombstones = [int(t) for t in sidecar["tombstones"]]
        count = int(sidecar["count"])
        expected = (int(sidecar["index_size"]), int(sidecar["index_mtime_ns"]))
        crc = int(sidecar["index_crc32"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexFileProblem(f"sidecar unreadable ({exc!r})") from exc
    stat = index_path.stat()
    if (stat.st_size, stat.st_mtime_ns) != expected or kind not in (FLAT, HNSW):
        raise IndexFileProblem("index file does not match its sidecar (interrupted save?)")
    try:
        check_layout(index_path)  # every size in it fits the file: FAISS allocates what they say
        if read_only:
            index = faiss.read_index(str(index_path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        else:
            if _crc32(index_path) != crc:
                raise IndexFileProblem("corrupt (checksum mismatch: the file changed on disk)")
            index = faiss.read_index(str(index_path))
    except (OSError, RuntimeError, LayoutError) as exc:
        raise IndexFileProblem(f"corrupt ({exc})") from exc
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
    wanted = faiss.IndexHNSWFlat if kind == HNSW else faiss.IndexFlatIP
    if not isinstance(inner, wanted) or inner.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexFileProblem(f"corrupt (not an IDMap2 over {wanted.__name__})")
    if index.id_map.size() != index.ntotal or (kind == HNSW and not _graph_in_bounds(inner)):
        raise IndexFileProblem("corrupt (the graph or the id map points outside the index)")
    return VectorIndex(index, kind, config, generation, tombstones, count)


def _graph_in_bounds(inner: faiss.IndexHNSWFlat) -> bool:
    """Every link of the HNSW graph names a stored vector (or -1), and the per-vector tables
    have one entry per vector: what FAISS trusts blindly while searching."""
    hnsw, n = inner.hnsw, inner.ntotal
    if hnsw.levels.size() != n or hnsw.offsets.size() != n + 1 or not -1 <= hnsw.entry_point < max(n, 1):
        return False
    offsets = faiss.rev_swig_ptr(hnsw.offsets.data(), hnsw.offsets.size())
    if offsets[0] != 0 or offsets[-1] != hnsw.neighbors.size() or (n and (offsets[1:] < offsets[:-1]).any()):
        return False
    if not hnsw.neighbors.size():
        return True
    links = faiss.rev_swig_ptr(hnsw.neighbors.data(), hnsw.neighbors.size())
    return bool(links.min() >= -1 and links.max() < n)


def file_facts(path: Path) -> dict[str, int]:
    """What the sidecar records about an index file to recognise it: size, mtime, CRC-32."""
    stat = path.stat()
    return {"index_size": stat.st_size, "index_mtime_ns": stat.st_mtime_ns, "index_crc32": _crc32(path)}


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


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


def _private_fd(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # also a file left 0644 by an older version
    return fd


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    _fsync(folder)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
