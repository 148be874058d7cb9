"""`photosearch index --ray ADDRESS`: the one-shot scan, with the embedding done on a Ray cluster.

The head (this process) walks the roots and decides what needs a look exactly as
`indexer.scanner.Scanner` does (it *is* a Scanner: roots, unplugged drives, removals and the
report are its); only the reconciliation of the files that are new or changed differs:

1. the files whose size or mtime changed, or that are new, go to the cluster
   (`indexer.ray_embed`): actors fingerprint, decode and embed them;
2. each block that comes back is settled on the head in one transaction with the scanner's own
   rules (`indexer.scan_outcomes`): a touched file, a move or a copy keeps the stored vector
   (the cluster embedded it anyway: one read per file beats a round trip per fingerprint),
   anything else is stored with its new vector, a file that could not be read is failed;
3. the block's stored vectors are also written as one shard (`storage.vector_shards`), from
   which `storage.shard_index` builds an index for a library too large for one FAISS file.

A block that comes back twice (Ray reran it after a worker died) is stored once: the head
remembers the paths it has settled in this run. A run stopped midway (Ctrl-C, the head's
crash) keeps every committed block; the next run embeds only the rest, as the scanner would.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from photosearch.indexer.copies import Copies
from photosearch.indexer.embedder import EmbeddedPhoto
from photosearch.indexer.ray_embed import (
    HEAD_BATCH,
    EmbeddedFile,
    FileToEmbed,
    cluster_cpus,
    connect,
    embed_on_ray,
)
from photosearch.indexer.scan_outcomes import (
    forget_later,
    gone,
    record_failure,
    settle_without_model,
    store_embedded,
)
from photosearch.indexer.scanner import Scanner
from photosearch.storage import PhotoRecord
from photosearch.storage.vector_shards import new_run_folder, write_shard


class RayModel:
    """What the Scanner needs of an embedder, for a model that runs on the cluster at `address`
    (joined on first use: a scan with nothing new never starts Ray) with `actors` actors of
    `threads` CPUs each (default: one actor per CPU of the cluster); the head settles
    `head_batch` files per transaction and shard."""

    def __init__(self, checkpoint: Path, fingerprint: str, address: str, actors: int | None = None,
                 threads: int = 1, head_batch: int = HEAD_BATCH):
        self.checkpoint = checkpoint
        self.fingerprint = fingerprint
        self.address = address
        self.actors = actors
        self.threads = threads
        self.head_batch = head_batch

    def embed(self, files: list[FileToEmbed]):
        """Join the cluster and embed `files` there (`indexer.ray_embed.embed_on_ray`)."""
        connect(self.address)
        self.actors = self.actors or max(1, cluster_cpus() // self.threads)
        return embed_on_ray(files, self.checkpoint, self.fingerprint, actors=self.actors, threads=self.threads,
                            head_batch=self.head_batch)


class RayScanner(Scanner):
    """A Scanner whose new and changed files are fingerprinted and embedded on Ray.

    `shard_folder`: where this run's vector shards go (default: a new folder under the
    library's `shards/`); `duplicates` counts the rows Ray delivered twice (a block rerun after
    a worker died), each settled only once."""

    def __init__(self, lib, model: RayModel, *, shard_folder: Path | None = None, **options):
        super().__init__(lib, model, **options)
        self.model = model
        self.shard_folder = shard_folder
        self.duplicates = 0
        self._settled: set[str] = set()
        self._seq = 0

    def _reconcile(self, disk, known: dict[str, PhotoRecord], errors: list[str], report):
        changed, vanished = self._partition(disk, known, errors, report)
        todo = {found.path: (found, record) for found, record in changed}
        files = []
        for path in todo:
            files.append(FileToEmbed(path, self._seq))
            self._seq += 1
        if not files:
            return vanished
        if self.shard_folder is None and self.lib.folder is not None:
            self.shard_folder = new_run_folder(self.lib.folder)
        copies = Copies(self.lib, self.model.fingerprint)
        blocks = self.model.embed(files)
        try:
            for block in blocks:
                self._store_block(block, todo, vanished, copies, report)
                if self._stopping():
                    break
        finally:
            blocks.close()  # stops the Ray execution when we leave early
        return vanished

    def _store_block(self, block: list[EmbeddedFile], todo, vanished, copies, report) -> None:
        """One block from the cluster, settled in one transaction, then its shard written."""
        fresh = [row for row in block if row.path not in self._settled]
        self.duplicates += len(block) - len(fresh)
        if not fresh:
            return
        waiting, embedded, failed = {}, {}, {}
        with self.lib.transaction():
            for row in fresh:
                found, record = todo[row.path]
                if not row.fingerprint:  # could not even be read
                    if gone(row.path):
                        forget_later(found, record, vanished)
                    else:
                        record_failure(self.lib, found, record.fingerprint if record else "", row.error, report)
                elif not settle_without_model(self.lib, copies, found, record, row.fingerprint, vanished, report):
                    waiting[row.path] = (found, record, row.fingerprint)
                    if row.error:
                        failed[row.path] = row.error
                    else:
                        embedded[row.path] = EmbeddedPhoto(row.vector, row.width, row.height, row.taken_at,
                                                          row.taken_offset, row.tags, row.phash)
            store_embedded(self.lib, copies, embedded, failed, waiting, vanished, report)
        self._settled.update(row.path for row in fresh)
        self._advance(len(fresh))
        self._write_shard(fresh, embedded)
        self._batches += 1
        if self._batches % self.save_every == 0:
            self.lib.save_index()

    def _write_shard(self, fresh: list[EmbeddedFile], embedded: dict[str, EmbeddedPhoto]) -> None:
        if self.shard_folder is None or not embedded:
            return
        rows = [row for row in fresh if row.path in embedded]
        ids = [self.lib.get_by_path(row.path).id for row in rows]
        vectors = np.stack([embedded[row.path].vector for row in rows])  # (N, D)
        write_shard(self.shard_folder, min(row.seq for row in rows), np.array(ids), vectors)


def scan_on_ray(lib, model: RayModel, roots: list[str], progress=None,
                stop: threading.Event | None = None, shard_folder: Path | None = None):
    """One reconciliation of `roots` with the embedding on the connected Ray cluster;
    returns (the ScanReport, the scanner: its `shard_folder` and `duplicates`)."""
    scanner = RayScanner(lib, model, on_progress=progress, shard_folder=shard_folder)
    return scanner.scan(roots, stop=stop), scanner
