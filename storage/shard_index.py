"""A FAISS index for a library too large for one in-memory file, built from vector shards.

The single-machine store (`storage.vector_store`) keeps every vector in RAM, exact (or HNSW).
At tens of millions of photos that is tens to hundreds of GB, so a cluster run's shards
(`storage.vector_shards`) are turned into an IVF index whose lists live on disk, the way
clip-retrieval/autofaiss index LAION:

1. **train** the coarse quantizer (k-means, `nlist` lists) and the codec (8-bit scalar
   quantizer, `SQ8`: D bytes a vector; or product quantizer, `PQm`: m bytes) on a sample of
   `train_per_list * nlist` vectors drawn from all shards;
2. **fill**: each shard is added to a copy of the trained, empty index in parallel (FAISS
   releases the GIL), and written as a block file;
3. **merge** the blocks' inverted lists into one `lists.ivfdata` file on disk (FAISS's
   `OnDiskInvertedLists`, `faiss.contrib.ondisk.merge_ondisk`), with the index header beside it.

`ShardIndex.open` maps the lists into memory (`IO_FLAG_ONDISK_SAME_DIR`): opening reads the
header and the centroids only, and a query touches the `nprobe` lists it scans. `choose_nprobe`
measures recall@k against the exact answer (`exact_search`, a scan of the shards) and keeps the
smallest nprobe that reaches the target, stored with the index. Raises StorageError; never prints.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from .errors import StorageError
from .recall import recall_at_k
from .vector_shards import Shard, read_shards

INDEX_NAME = "populated.index"
LISTS_NAME = "lists.ivfdata"
INFO_NAME = "shard-index.json"
ADD_CHUNK = 65_536  # vectors handed to FAISS at a time while filling


@dataclass(frozen=True)
class ShardIndexInfo:
    """What `shard-index.json` records about one built index."""

    vectors: int
    dim: int
    factory: str  # the FAISS factory string, e.g. "IVF1024,SQ8"
    nlist: int
    nprobe: int  # the one searches use; chosen by `choose_nprobe`
    recall_at_10: float | None  # measured at that nprobe, or None before choose_nprobe
    index_bytes: int  # header + centroids + lists on disk
    built_in: str  # the folder it was built in (its header names the lists file there)


def default_nlist(n: int) -> int:
    """Lists for `n` vectors: about 4 sqrt(n), a power of two, 64..65536 (FAISS's guidance)."""
    return int(min(65536, max(64, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))))


def build_shard_index(shard_folder: str | os.PathLike, out: str | os.PathLike, *, codec: str = "SQ8",
                      nlist: int | None = None, train_per_list: int = 40, workers: int = 4,
                      seed: int = 0) -> ShardIndexInfo:
    """Build the IVF index of every complete shard in `shard_folder` into folder `out`.

    `codec`: "SQ8" (D bytes a vector) or "PQ<m>" (m bytes; m must divide D); `nlist`: lists
    (default `default_nlist`); `workers`: shards filled at once. The index searches by inner
    product and returns the shards' ids. StorageError when there are no shards, or fewer
    vectors than lists."""
    shards = list(read_shards(shard_folder))
    n = sum(len(s) for s in shards)
    if not n:
        raise StorageError(f"no complete vector shards in {shard_folder}")
    dim = shards[0].vectors.shape[1]
    if any(s.vectors.shape[1] != dim for s in shards):
        raise StorageError(f"the shards in {shard_folder} do not share one dimension")
    nlist = nlist or default_nlist(n)
    if n < nlist:
        raise StorageError(f"{n} vectors cannot train {nlist} lists; pass a smaller nlist")
    out = Path(out)
    work = out / "blocks"
    work.mkdir(parents=True, exist_ok=True)
    factory = f"IVF{nlist},{codec}"
    trained = _trained(factory, dim, _sample(shards, min(n, train_per_list * nlist), seed))
    trained_path = work / "trained.index"
    faiss.write_index(trained, str(trained_path))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        blocks = list(pool.map(lambda i: _fill(trained_path, shards[i], work / f"block-{i:05d}.index"),
                               range(len(shards))))
    from faiss.contrib.ondisk import merge_ondisk

    for stale in (out / INDEX_NAME, out / LISTS_NAME):
        stale.unlink(missing_ok=True)
    index = faiss.read_index(str(trained_path))
    with _fd1_silenced():  # FAISS's C++ says "resizing ..." on stdout
        merge_ondisk(index, [str(b) for b in blocks], str(out / LISTS_NAME))
    faiss.write_index(index, str(out / INDEX_NAME))
    shutil.rmtree(work)
    size = sum((out / name).stat().st_size for name in (INDEX_NAME, LISTS_NAME))
    info = ShardIndexInfo(n, dim, factory, nlist, nprobe=min(nlist, 16), recall_at_10=None, index_bytes=size,
                          built_in=str(out.resolve()))
    _write_info(out, info)
    return info


class ShardIndex:
    """A built shard index, its lists memory-mapped; `search` as FAISS's, by inner product."""

    def __init__(self, index, info: ShardIndexInfo, folder: Path):
        self.index = index
        self.info = info
        self.folder = folder

    @classmethod
    def open(cls, folder: str | os.PathLike) -> ShardIndex:
        """Map the index in `folder`; StorageError when it is missing or unreadable."""
        folder = Path(folder)
        try:
            info = ShardIndexInfo(**json.loads((folder / INFO_NAME).read_text()))
            if Path(info.built_in) == folder.resolve():
                index = faiss.read_index(str(folder / INDEX_NAME))  # maps the lists file it names
            else:  # moved since: the lists file beside it (FAISS says so on stdout)
                index = faiss.read_index(str(folder / INDEX_NAME), faiss.IO_FLAG_ONDISK_SAME_DIR)
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            raise StorageError(f"no readable shard index in {folder}: {exc}") from None
        faiss.extract_index_ivf(index).nprobe = info.nprobe
        return cls(index, info, folder)

    def search(self, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores float32 (Q, k), ids int64 (Q, k); -1 where fewer) for float32 (Q, D)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        ivf = faiss.extract_index_ivf(self.index)
        ivf.nprobe = nprobe or self.info.nprobe
        try:
            return self.index.search(queries, k)
        finally:
            ivf.nprobe = self.info.nprobe

    def choose_nprobe(self, queries: np.ndarray, exact_ids: np.ndarray, target: float = 0.95,
                      k: int = 10) -> tuple[int, float, list[tuple[int, float]]]:
        """The smallest power-of-two nprobe whose recall@k against `exact_ids` (Q, k) reaches
        `target` (else the best measured), stored with the index; returns (nprobe, its recall,
        [(nprobe, recall@k) for each tried])."""
        tried = []
        nprobe = 1
        while True:
            _, ids = self.search(queries, k, nprobe)
            tried.append((nprobe, recall_at_k(ids, exact_ids)))
            if tried[-1][1] >= target or nprobe >= self.info.nlist:
                break
            nprobe = min(self.info.nlist, nprobe * 2)
        best = next((t for t in tried if t[1] >= target), max(tried, key=lambda t: t[1]))
        self.info = ShardIndexInfo(**{**asdict(self.info), "nprobe": best[0], "recall_at_10": round(best[1], 4)})
        faiss.extract_index_ivf(self.index).nprobe = best[0]
        _write_info(self.folder, self.info)
        return best[0], best[1], tried


def exact_search(shard_folder: str | os.PathLike, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact top-`k` (scores (Q, k), ids (Q, k)) by inner product over every shard, read one
    shard at a time (memory: one shard's block of scores)."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.full((len(queries), k), -1, dtype=np.int64)
    for shard in read_shards(shard_folder):
        for start in range(0, len(shard), ADD_CHUNK):
            scores = queries @ np.asarray(shard.vectors[start:start + ADD_CHUNK]).T  # (Q, n)
            ids = np.broadcast_to(shard.ids[start:start + ADD_CHUNK], scores.shape)
            scores = np.concatenate([best_scores, scores], axis=1)
            ids = np.concatenate([best_ids, ids], axis=1)
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            best_scores = np.take_along_axis(scores, top, 1)
            best_ids = np.take_along_axis(ids, top, 1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_scores, order, 1), np.take_along_axis(best_ids, order, 1)


def _trained(factory: str, dim: int, sample: np.ndarray):
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise StorageError(f"FAISS cannot build {factory!r} for dimension {dim}: {exc}") from None
    index.train(sample)
    return index


def _sample(shards: Sequence[Shard], count: int, seed: int) -> np.ndarray:
    """`count` vectors drawn uniformly without replacement from all shards, float32 (count, D)."""
    sizes = np.array([len(s) for s in shards])
    picks = np.sort(np.random.default_rng(seed).choice(sizes.sum(), size=count, replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    which = np.searchsorted(starts, picks, side="right") - 1
    parts = [np.asarray(shards[i].vectors[picks[which == i] - starts[i]]) for i in np.unique(which)]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _fill(trained_path: Path, shard: Shard, block_path: Path) -> Path:
    index = faiss.read_index(str(trained_path))
    for start in range(0, len(shard), ADD_CHUNK):
        vectors = np.ascontiguousarray(shard.vectors[start:start + ADD_CHUNK], dtype=np.float32)
        index.add_with_ids(vectors, np.ascontiguousarray(shard.ids[start:start + ADD_CHUNK]))
    faiss.write_index(index, str(block_path))
    return block_path


@contextlib.contextmanager
def _fd1_silenced():
    """File descriptor 1 sent to /dev/null for the block (C++ writes bypass sys.stdout)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _write_info(folder: Path, info: ShardIndexInfo) -> None:
    temporary = folder / (INFO_NAME + ".tmp")
    temporary.write_text(json.dumps(asdict(info), indent=1))
    os.replace(temporary, folder / INFO_NAME)
