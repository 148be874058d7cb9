"""Turning photo files into search vectors with a loaded model.

Decoding is the slow part of indexing on a CPU, and Pillow releases the GIL while it
decodes, so a small thread pool decodes (and applies `model.preprocess`) ahead of the
model: while the model encodes batch k, the pool is already preparing batch k+1. At most
`prefetch` prepared images wait in memory at any time. ONNX Runtime also releases the GIL
while it runs, so decoding and the model overlap for real.

What keeps a 12 MP JPEG cheap on a small CPU (numbers: benchmarks/README.md):
- JPEGs are decoded at reduced size by libjpeg's DCT scaling (`Image.draft`), just large
  enough that the short side stays >= the model's input side (`decode_side`): a 12 MP photo
  comes out at 500 x 375, so the resize to the model's square input is cheap too.
- The model is the checkpoint's ONNX export (`miniclip.runtime.SearchModel`), run by ONNX
  Runtime with `model_threads` intra-op threads that sleep rather than spin when idle, so
  the decode threads get the cores while the model waits for a batch.

The model is anything with the attributes DESIGN.md promises: `preprocess` (PIL image ->
uint8 array), `encode_search_images` ((B, ...) stacked arrays -> (B, D) float32), `search_dim`
and `fingerprint`; `image_size` (the square input side) and `encode_tagged_images` (vectors
and each photo's automatic tags, `miniclip.tags`) where it has them.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator

import numpy as np

from photosearch.indexer.images import DEFAULT_TARGET, PhotoDecodeError, load_photo
from photosearch.indexer.perceptual_hash import perceptual_hash
from photosearch.miniclip.runtime import available_cores


@dataclass(frozen=True)
class EmbeddedPhoto:
    """A photo's search vector with the facts learnt while decoding it (for the library)."""

    vector: np.ndarray  # float32 (D,)
    width: int
    height: int
    taken_at: datetime | None  # EXIF time, local wall time
    taken_offset: int | None = None  # its UTC offset in minutes, if EXIF says
    tags: tuple[tuple[str, float], ...] = ()  # (ImageNet class name, probability), best first
    phash: int | None = None  # perceptual hash (indexer.perceptual_hash)


@dataclass(frozen=True)
class _Prepared:
    pixels: np.ndarray  # the model's input for one photo, e.g. uint8 (S, S, 3)
    width: int
    height: int
    taken_at: datetime | None
    taken_offset: int | None
    phash: int | None = None


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
        model_threads: int | None = None,
    ):
        """`target`: the model's input side; `decode_side`: the short side photos are decoded
        to at least (default: `target`); `workers`: decode threads (default: the cores, at most
        8); `model_threads`: ONNX Runtime's intra-op threads for a SearchModel whose image tower
        is not built yet (default: the cores)."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        cores = available_cores()
        self.model = model
        self.batch_size = batch_size
        self.target = target or int(getattr(model, "image_size", DEFAULT_TARGET))
        self.decode_side = decode_side or self.target
        if hasattr(model, "load_image_tower") and not model.image_tower_ready:
            model.load_image_tower(model_threads or cores)
        self.prefetch = 2 * batch_size  # one batch being encoded, one being decoded
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
            pixels = self.model.preprocess(photo.image)
            phash = perceptual_hash(photo.image)
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop a batch
            return f"could not prepare image for the model ({type(exc).__name__}: {exc})"
        finally:
            photo.image.close()
        return _Prepared(pixels, photo.width, photo.height, photo.taken_at, photo.taken_offset, phash)

    def _encode(self, batch: list[tuple[str, _Prepared]], errors: dict[str, str]):
        """Run the model on one batch; non-finite vectors are added to `errors`."""
        done: dict[str, EmbeddedPhoto] = {}
        if not batch:
            return done
        pixels = np.stack([prepared.pixels for _, prepared in batch])  # (B, ...)
        if hasattr(self.model, "encode_tagged_images"):  # a model that also names what it sees
            out, tags = self.model.encode_tagged_images(pixels)
        else:
            out, tags = self.model.encode_search_images(pixels), [()] * len(batch)
        out = np.asarray(out, dtype=np.float32)  # (B, D)
        if out.shape != (len(batch), self.search_dim):
            raise ValueError(
                f"model returned vectors of shape {out.shape}, "
                f"expected {(len(batch), self.search_dim)}"
            )
        for (path, prepared), vec, photo_tags in zip(batch, out, tags):
            if np.all(np.isfinite(vec)):
                done[path] = EmbeddedPhoto(
                    np.ascontiguousarray(vec), prepared.width, prepared.height, prepared.taken_at,
                    prepared.taken_offset, tuple(photo_tags), prepared.phash,
                )
            else:
                errors[path] = "model produced a non-finite vector"
        return done

