"""Vector shards: the embeddings of one indexing run, written a batch at a time to plain files.

An indexing run on a cluster (`indexer.ray_scan`) writes every batch it stores as one shard in
a run folder, `<library>/shards/<run>/`:

- `part-<first>.npy`: float32 `(N, D)` search vectors (memory-mappable: `np.load(mmap_mode="r")`);
- `part-<first>.ids.npy`: int64 `(N,)` the library's photo ids, row for row.

`<first>` is the position (in the run's file list) of the batch's first file, so a batch that is
written again (a retried task) replaces its own shard instead of adding a second one. Both files
are written atomically (temporary name, fsync, rename; the ids last), so a shard whose ids file
exists is complete. `storage.shard_index` builds a FAISS index from a run's shards. Pure numpy:
no FAISS, no SQL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import StorageError

SHARDS_DIR = "shards"
_PART = re.compile(r"^part-(\d{12})\.ids\.npy$")


@dataclass(frozen=True)
class Shard:
    """One complete shard: `vectors` float32 `(N, D)` memory-mapped, `ids` int64 `(N,)`."""

    path: Path  # the vectors file
    ids: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def new_run_folder(library_folder: str | os.PathLike) -> Path:
    """A fresh, empty `<library>/shards/<UTC time>` folder for one run's shards."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = Path(library_folder) / SHARDS_DIR / stamp
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise StorageError(f"cannot create the shard folder {folder}: {exc.strerror}") from exc
    return folder


def write_shard(folder: str | os.PathLike, first: int, ids: np.ndarray, vectors: np.ndarray) -> Path:
    """Write (or replace) shard `first` in `folder`: int64 ids `(N,)`, float32 vectors `(N, D)`.

    Returns the vectors file's path. Raises StorageError when the files cannot be written (the
    old shard, if any, is then intact) or the shapes disagree."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or ids.shape != (len(vectors),):
        raise StorageError(f"a shard needs ids (N,) and vectors (N, D); got {ids.shape} and {vectors.shape}")
    folder = Path(folder)
    stem = folder / f"part-{first:012d}"
    try:
        _save_atomically(stem.with_suffix(".npy"), vectors)
        _save_atomically(stem.with_suffix(".ids.npy"), ids)  # last: its presence means complete
    except OSError as exc:
        raise StorageError(f"cannot write shard {stem}: {exc.strerror}") from exc
    return stem.with_suffix(".npy")


def read_shards(folder: str | os.PathLike) -> Iterator[Shard]:
    """The complete shards of one run folder, in order of their first file; vectors mapped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StorageError(f"no shard folder at {folder}")
    for name in sorted(os.listdir(folder)):
        match = _PART.match(name)
        if match is None:
            continue
        vectors_path = folder / f"part-{match.group(1)}.npy"
        ids = np.load(folder / name)
        vectors = np.load(vectors_path, mmap_mode="r")
        if vectors.ndim != 2 or len(vectors) != len(ids):
            raise StorageError(f"shard {vectors_path} holds {vectors.shape} vectors for {len(ids)} ids")
        yield Shard(vectors_path, ids, vectors)


def shard_files(folder: str | os.PathLike) -> list[Path]:
    """The vectors files of the complete shards in `folder`, in order."""
    return [shard.path for shard in read_shards(folder)]


def _save_atomically(path: Path, array: np.ndarray) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as fh:
        np.save(fh, array)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temporary, path)
