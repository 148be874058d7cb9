"""Turning photo files into search vectors with a loaded model.

Decoding is the slow part of indexing on a CPU, and Pillow releases the GIL while it
decodes, so a small thread pool decodes (and applies `model.image_transform`) ahead of the
model: while the model encodes batch k, the pool is already preparing batch k+1. At most
`prefetch` prepared images wait in memory at any time.

What keeps a 12 MP JPEG cheap on a small CPU (numbers: benchmarks/README.md):
- JPEGs are decoded at reduced size by libjpeg's DCT scaling (`Image.draft`), just large
  enough that the short side stays >= the model's input side (`decode_side`): a 12 MP photo
  comes out at 500 x 375, so the resize to the model's square input is cheap too.
- While photos are embedded, torch runs on few threads (`torch_threads`: a quarter of the
  cores, so one on a 2-core machine; a process-wide setting, restored afterwards): the decode
  threads, the model and the transforms' small tensor ops then share the cores instead of
  each starting thread teams of its own, which made the transform alone 5x slower.
- The backbone runs in channels_last layout, under `torch.inference_mode`, and in bfloat16
  autocast on CPUs with native bf16 instructions (`precision="auto"`); vectors stay within
  cosine 0.99 of the float32 model (the benchmarks check it on every run).

The model is anything with the four attributes DESIGN.md promises: `image_transform`
(PIL image -> (3, H, W) tensor), `encode_search_images` ((B, 3, H, W) -> (B, D) float32
array), `search_dim` and `fingerprint`.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator

import numpy as np
import torch

from photosearch.indexer.images import DEFAULT_TARGET, PhotoDecodeError, load_photo


@dataclass(frozen=True)
class EmbeddedPhoto:
    """A photo's search vector with the facts learnt while decoding it (for the library)."""

    vector: np.ndarray  # float32 (D,)
    width: int
    height: int
    taken_at: datetime | None


@dataclass(frozen=True)
class _Prepared:
    tensor: torch.Tensor  # (3, H, W)
    width: int
    height: int
    taken_at: datetime | None


class Embedder:
    """Embeds photo files in batches; bad files come back as errors, never as exceptions.

    Use as a context manager (or call `close`) so the decode threads are shut down.
    """

    def __init__(
        self,
        model,
        *,
        batch_size: int = 32,
        workers: int | None = None,
        target: int | None = None,
        decode_side: int | None = None,
        torch_threads: int | None = None,
        channels_last: bool = True,
        precision: str = "auto",
    ):
        """`target`: the model's input side; `decode_side`: the short side photos are decoded
        to at least (default: `target`); `workers`: decode threads (default: the cores);
        `torch_threads`: torch's threads while embedding (default: a quarter of the cores, at
        least one); `precision`: "auto" (bfloat16 where the CPU has it natively), "bfloat16"
        or "float32". A MiniCLIP's backbone is switched to channels_last in place."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if precision not in ("auto", "bfloat16", "float32"):
            raise ValueError(f"precision must be auto, bfloat16 or float32, not {precision!r}")
        cores = _cores()
        self.model = model
        self.batch_size = batch_size
        self.target = target or _model_input_size(model)
        self.decode_side = decode_side or self.target
        self.torch_threads = torch_threads or max(1, cores // 4)
        self._device = _model_device(model)
        real_model = hasattr(model, "image_trunk")  # a MiniCLIP, not a stand-in
        self.channels_last = channels_last and real_model
        if precision == "auto":
            precision = "bfloat16" if real_model and self._device.type == "cpu" and native_bf16() else "float32"
        self.precision = precision
        self._transform = model.image_transform  # built once; MiniCLIP makes a new one per access
        self.prefetch = 2 * batch_size  # one batch being encoded, one being decoded
        if self.channels_last:
            model.image_trunk.to(memory_format=torch.channels_last)  # weights too: no reorder per batch
        self._pool = ThreadPoolExecutor(max_workers=workers or min(8, cores), thread_name_prefix="decode")

    @property
    def fingerprint(self) -> str:
        """The model's identity; vectors from different fingerprints must not be mixed."""
        return self.model.fingerprint

    @property
    def search_dim(self) -> int:
        return int(self.model.search_dim)

    def embed_files(
        self, paths: Iterable[str | os.PathLike]
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """Return ({path: float32 (D,) vector}, {path: short reason}) covering every path."""
        photos, errors = self.embed_photos(paths)
        return {path: photo.vector for path, photo in photos.items()}, errors

    def embed_photos(
        self, paths: Iterable[str | os.PathLike]
    ) -> tuple[dict[str, EmbeddedPhoto], dict[str, str]]:
        """Like `embed_files`, keeping each photo's size and capture time with its vector."""
        done: dict[str, EmbeddedPhoto] = {}
        errors: dict[str, str] = {}
        for batch_done, batch_errors in self.embed_batches(paths):
            done.update(batch_done)
            errors.update(batch_errors)
        return done, errors

    def embed_batches(
        self, paths: Iterable[str | os.PathLike]
    ) -> Iterator[tuple[dict[str, EmbeddedPhoto], dict[str, str]]]:
        """Yield (embedded, errors) for each model batch of up to `batch_size` photos.

        `paths` is consumed lazily, only as far as the decode window needs, so a caller can
        feed it from a generator and store each batch before the next is encoded.
        """
        batch: list[tuple[str, _Prepared]] = []
        errors: dict[str, str] = {}
        with _LOWERED_THREADS.held(self.torch_threads):
            for path, prepared in self._prepared(str(p) for p in paths):
                if isinstance(prepared, str):
                    errors[path] = prepared
                    continue
                batch.append((path, prepared))
                if len(batch) == self.batch_size:
                    yield self._encode(batch, errors), errors
                    batch, errors = [], {}
            if batch or errors:
                yield self._encode(batch, errors), errors

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _prepared(self, paths: Iterable[str]):
        """Yield (path, tensor or error reason) in input order, decoding ahead in the pool."""
        window: deque[tuple[str, Future]] = deque()
        try:
            for path in paths:
                window.append((path, self._pool.submit(self._prepare, path)))
                if len(window) >= self.prefetch:
                    done_path, future = window.popleft()
                    yield done_path, future.result()
            while window:
                done_path, future = window.popleft()
                yield done_path, future.result()
        finally:
            for _, future in window:  # the caller stopped early or the model raised
                future.cancel()

    def _prepare(self, path: str) -> _Prepared | str:
        try:
            # load_photo keeps the short side >= 2 * its target
            photo = load_photo(path, target=max(1, -(-self.decode_side // 2)))
        except PhotoDecodeError as exc:
            return exc.reason
        try:
            tensor = self._transform(photo.image)
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop a batch
            return f"could not prepare image for the model ({type(exc).__name__}: {exc})"
        finally:
            photo.image.close()
        return _Prepared(tensor, photo.width, photo.height, photo.taken_at)

    def _encode(self, batch: list[tuple[str, _Prepared]], errors: dict[str, str]):
        """Run the model on one batch; non-finite vectors are added to `errors`."""
        done: dict[str, EmbeddedPhoto] = {}
        if not batch:
            return done
        images = torch.stack([prepared.tensor for _, prepared in batch]).to(self._device)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bfloat16" else nullcontext()
        with torch.inference_mode(), autocast:
            out = self.model.encode_search_images(images)  # (B, 3, H, W) -> (B, D) float32
        out = np.asarray(out.cpu() if isinstance(out, torch.Tensor) else out, dtype=np.float32)
        if out.shape != (len(batch), self.search_dim):
            raise ValueError(
                f"model returned vectors of shape {out.shape}, "
                f"expected {(len(batch), self.search_dim)}"
            )
        for (path, prepared), vec in zip(batch, out):
            if np.all(np.isfinite(vec)):
                done[path] = EmbeddedPhoto(
                    np.ascontiguousarray(vec), prepared.width, prepared.height, prepared.taken_at
                )
            else:
                errors[path] = "model produced a non-finite vector"
        return done


def _model_input_size(model) -> int:
    """The side of the model's (square) input images."""
    config = getattr(model, "config", None)
    return int(getattr(config, "image_size", DEFAULT_TARGET))


def _model_device(model) -> torch.device:
    """The device of the model's weights (CPU for weightless stand-ins)."""
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        for param in parameters():
            return param.device
    return torch.device("cpu")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def native_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX); emulated bf16 is slower
    than float32, so "auto" precision stays float32 elsewhere."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


class _ThreadsWhileEmbedding:
    """Sets torch's intra-op thread count (process-wide) while any embedding runs, and puts the
    previous count back when the last one ends."""

    def __init__(self):
        self._lock = threading.Lock()
        self._holders = 0
        self._saved = 0

    @contextmanager
    def held(self, count: int):
        with self._lock:
            if self._holders == 0:
                self._saved = torch.get_num_threads()
                torch.set_num_threads(count)
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    torch.set_num_threads(self._saved)


_LOWERED_THREADS = _ThreadsWhileEmbedding()
