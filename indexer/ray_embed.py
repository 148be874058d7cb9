"""Embedding a list of photo files on a Ray cluster, with the single-machine embedder.

The files go through Ray Data as one `map_batches` over actors: each actor loads the model once
(`miniclip.runtime.load_search_model`, ONNX Runtime) and runs the very `indexer.embedder.Embedder`
that `photosearch index` runs on one machine, so a photo gets the same vector either way. An actor
reads each file twice, as the single-machine scan does: once for its content fingerprint, once
to decode it. Nothing but paths goes to the actors and nothing but one row per file (its
fingerprint, size facts and vector, or why it failed) comes back, a block at a time, so the head
holds one block of vectors at once, never the run's.

A worker that dies (killed, out of memory, its node lost) is restarted by Ray and its unfinished
blocks are run again (`MAX_RESTARTS`, `MAX_TASK_RETRIES`): a photo is never lost, but a block may
come back twice. The caller (`indexer.ray_scan`) stores each path once.

Needs the `cluster` extra (`pip install 'photosearch[cluster]'`): Ray is imported inside the
functions here, and `RayUnavailable` says what to install.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

BLOCK_ROWS = 32  # paths per Ray block (one model batch): the unit a dead worker's retry redoes
HEAD_BATCH = 256  # rows the head settles (one transaction, one shard) at a time
MAX_RESTARTS = 8  # times Ray brings one dead embedding actor back
MAX_TASK_RETRIES = 8  # times Ray reruns a block whose actor died under it
INSTALL_HINT = "indexing on Ray needs the cluster extra: pip install 'photosearch[cluster]'"


class RayUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be reached; the message says what to do."""


@dataclass(frozen=True)
class FileToEmbed:
    path: str
    seq: int  # position in the run's list: names the shard a block is written to


@dataclass(frozen=True)
class EmbeddedFile:
    """One file as an actor saw it: `fingerprint` is "" when it could not be read at all."""

    path: str
    seq: int
    fingerprint: str
    error: str  # "" when embedded
    width: int
    height: int
    taken_at: datetime | None
    vector: np.ndarray | None  # float32 (D,) when embedded
    taken_offset: int | None = None  # minutes east of UTC, if EXIF says
    tags: tuple[tuple[str, float], ...] = ()  # automatic tags, best first
    phash: int | None = None  # perceptual hash


def import_ray():
    """The `ray` module, or RayUnavailable saying what to install."""
    # Ray's C++ start-up notes (token auth, connection retries) are not the user's business;
    # its fatal errors still show. Read when Ray is first imported.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayUnavailable(INSTALL_HINT) from None
    return ray


def connect(address: str, cpus: int | None = None) -> None:
    """Join the Ray cluster at `address` (`host:port`, `ray://host:port`), or `auto`: the
    cluster started on this machine with `ray start`, else a new one in this process with
    `cpus` CPUs (default: all). Once connected, later calls keep that connection.
    RayUnavailable when nothing answers at `address`."""
    ray = import_ray()
    if address != "auto":
        _check_reachable(address)
    if ray.is_initialized():
        return
    options = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
    if address == "auto":
        try:
            ray.init(address="auto", **options)
        except ConnectionError:
            ray.init(num_cpus=cpus, **options)
        return
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise RayUnavailable(f"cannot join the Ray cluster at {address}: {exc}; start one with "
                             "`ray start --head`, or pass --ray auto for one on this machine") from None


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """RayUnavailable at once when nothing listens at a `host:port` address (Ray itself
    would retry for minutes); `ray://` addresses are left to Ray."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        if "://" not in address:
            raise RayUnavailable(f"--ray takes host:port, ray://host:port or auto, not {address!r}")
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RayUnavailable(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start one with "
                             "`ray start --head`, or pass --ray auto for one on this machine") from None


def cluster_cpus() -> int:
    """CPUs the connected cluster offers (at least 1)."""
    return max(1, int(import_ray().cluster_resources().get("CPU", 1)))


def embed_on_ray(files: Sequence[FileToEmbed], checkpoint: Path, model_fingerprint: str, *,
                 actors: int, batch_size: int = 32, threads: int = 1,
                 head_batch: int = HEAD_BATCH) -> Iterator[list[EmbeddedFile]]:
    """Embed `files` on the connected cluster; yield the results a block at a time.

    `actors` embedding actors, each with `threads` CPUs (its ONNX Runtime intra-op threads and
    decode threads), the model loaded once per actor from `checkpoint` (a path every node can
    read; its export must have `model_fingerprint`, else the actor fails saying so). Every file
    comes back at least once; a block rerun after a worker died may come back twice. The head
    gets `head_batch` rows at a time."""
    import pyarrow as pa

    ray = import_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # progress is the caller's, on stderr
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    # Small blocks, at most two queued per actor: an actor that starts first (model loaded
    # sooner) cannot hoard the work while the others start, and results stream back steadily.
    rows = max(1, min(BLOCK_ROWS, batch_size, -(-len(files) // (2 * max(1, actors)))))
    blocks = [pa.table({"path": pa.array([os.fsencode(f.path) for f in files[i:i + rows]], pa.binary()),
                        "seq": pa.array([f.seq for f in files[i:i + rows]], pa.int64())})
              for i in range(0, len(files), rows)]
    if not blocks:
        return
    with warnings.catch_warnings():
        # Ray 2.60 deprecates passing actor options as keywords, but they are still the only
        # way to bound an actor pool's restarts (its defaults are unbounded: a file that
        # crashes the decoder would then loop forever).
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = ray.data.from_arrow(blocks).map_batches(
            EmbedPhotos, batch_size=batch_size, batch_format="numpy", num_cpus=threads,
            compute=ray.data.ActorPoolStrategy(size=max(1, actors), max_tasks_in_flight_per_actor=2),
            fn_constructor_kwargs={"checkpoint": str(checkpoint), "fingerprint": model_fingerprint,
                                   "threads": threads, "batch_size": batch_size},
            max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)
    for batch in dataset.iter_batches(batch_size=head_batch, batch_format="numpy", prefetch_batches=1):
        yield list(_rows(batch))


class EmbedPhotos:
    """The Ray Data actor: the model loaded once; per batch, fingerprint + decode + model."""

    def __init__(self, checkpoint: str, fingerprint: str, threads: int, batch_size: int):
        from photosearch.indexer.embedder import Embedder
        from photosearch.miniclip.runtime import load_search_model

        model = load_search_model(Path(checkpoint), image=False)
        if model.fingerprint != fingerprint:
            raise RuntimeError(f"the model at {checkpoint} on this node is {model.fingerprint}, the run "
                               f"embeds with {fingerprint}: install the same checkpoint on every node")
        model.load_image_tower(threads)
        self.embedder = Embedder(model, batch_size=batch_size, workers=threads + 1, model_threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from photosearch.indexer.fingerprint import file_fingerprint
        from photosearch.indexer.folders import os_error_reason

        paths = [os.fsdecode(bytes(p)) for p in batch["path"]]
        fingerprints, errors = {}, {}
        for path in paths:
            try:
                fingerprints[path] = file_fingerprint(path)
            except OSError as exc:
                errors[path] = os_error_reason(exc)
        embedded, failed = self.embedder.embed_photos([p for p in paths if p in fingerprints])
        errors.update(failed)
        dim = self.embedder.search_dim
        vectors = np.zeros((len(paths), dim), dtype=np.float32)  # (B, D)
        for row, path in enumerate(paths):
            if path in embedded:
                vectors[row] = embedded[path].vector
        facts = [embedded.get(path) for path in paths]
        return {
            "path": batch["path"], "seq": batch["seq"],
            "fingerprint": np.array([fingerprints.get(p, "") for p in paths], dtype=object),
            "error": np.array([errors.get(p, "") for p in paths], dtype=object),
            "width": np.array([f.width if f else 0 for f in facts], dtype=np.int64),
            "height": np.array([f.height if f else 0 for f in facts], dtype=np.int64),
            "taken_at": np.array([f.taken_at.isoformat() if f and f.taken_at else "" for f in facts], dtype=object),
            "vector": vectors,
            # JSON text and decimal text: Arrow columns of plain types (an absent value is "")
            "extra": np.array([json.dumps({"offset": f.taken_offset, "tags": [list(t) for t in f.tags],
                                           "phash": f.phash}) if f else "" for f in facts], dtype=object),
        }


def _rows(batch: dict[str, np.ndarray]) -> Iterator[EmbeddedFile]:
    for i in range(len(batch["seq"])):
        error, taken_at = str(batch["error"][i]), str(batch["taken_at"][i])
        yield EmbeddedFile(
            path=os.fsdecode(bytes(batch["path"][i])), seq=int(batch["seq"][i]),
            fingerprint=str(batch["fingerprint"][i]), error=error,
            width=int(batch["width"][i]), height=int(batch["height"][i]),
            taken_at=datetime.fromisoformat(taken_at) if taken_at else None,
            vector=None if error else np.array(batch["vector"][i], dtype=np.float32),
            **_extra(str(batch["extra"][i]) if "extra" in batch else ""),
        )


def _extra(text: str) -> dict:
    """EmbeddedFile's taken_offset, tags and phash from an actor's "extra" column."""
    if not text:
        return {}
    extra = json.loads(text)
    return {"taken_offset": extra.get("offset"), "phash": extra.get("phash"),
            "tags": tuple((str(name), float(p)) for name, p in extra.get("tags") or ())}
