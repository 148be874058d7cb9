"""On-disk cache of frozen-tower outputs: backbone features per image view, sentence embeddings.

Image entries are keyed by backbone, weights, preprocessing, augmentation seed and the file's
content (sha256), so a changed photo or another backbone never reuses stale features; later epochs
and later runs read them back instead of running the backbone again. View v of a photo is drawn
from a generator seeded by (seed, the photo's digest, v) alone, so the same seed gives the same
cache whatever the thread pool's order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from photosearch.miniclip.cache_dir import default_cache_dir
from photosearch.miniclip.file_hashes import sha256_of
from photosearch.miniclip.transforms import view_rng

Progress = Callable[[int, int], None]


def photo_digests(paths: list[Path]) -> list[str]:
    """Hex sha256 of each file's bytes: the photo's identity in the cache and in checkpoints."""
    return [sha256_of(p) for p in paths]


class FeatureCache:
    """Backbone features (N, V, C) for image files and sentence embeddings for caption lists."""

    def __init__(self, model, cache_dir: str | Path | None = None, batch_size: int = 64):
        self.model = model
        self.root = Path(cache_dir) if cache_dir else default_cache_dir()
        key = hashlib.sha256(model.preprocessing_key.encode()).hexdigest()[:16]
        self.image_dir = self.root / "features" / key
        self.batch_size = batch_size
        self._digests: dict[Path, str] = {}

    def digests(self, paths: list[Path]) -> list[str]:
        """sha256 of each photo (remembered for this cache's lifetime, as photos are read twice)."""
        todo = [p for p in paths if p not in self._digests]
        self._digests.update(zip(todo, photo_digests(todo)))
        return [self._digests[p] for p in paths]

    def _entry(self, content: str, seed: int) -> Path:
        return self.image_dir / content[:2] / f"{content}-s{seed}.npy"

    def _views(self, path: Path, content: str, views: int, seed: int) -> torch.Tensor:
        with Image.open(path) as im:
            image = im.convert("RGB")
        out = [self.model.image_transform(image)]
        augment = self.model.augment_transform
        for v in range(1, views):
            out.append(augment(image, view_rng(seed, content, v), view=v))
        return torch.stack(out)  # (V, 3, H, W)

    def image_features(self, paths: list[Path], views: int = 1, seed: int = 0, progress: Progress | None = None) -> torch.Tensor:
        """(N, views, C) float32 features; missing entries are computed and stored."""
        hashes = self.digests(paths)
        result: list[np.ndarray | None] = [None] * len(paths)
        todo = []
        for i, h in enumerate(hashes):
            entry = self._entry(h, seed)
            if entry.is_file():
                try:
                    cached = np.load(entry)
                    if cached.shape[0] >= views:
                        result[i] = cached[:views]
                        continue
                except (OSError, ValueError):
                    pass  # a damaged entry is recomputed
            todo.append(i)
        done = len(paths) - len(todo)
        if progress:
            progress(done, len(paths))
        chunk = max(1, self.batch_size // views)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for start in range(0, len(todo), chunk):
                idx = todo[start:start + chunk]
                stacks = list(pool.map(lambda i: self._views(paths[i], hashes[i], views, seed), idx))
                images = torch.cat(stacks).contiguous(memory_format=torch.channels_last)  # (n*V, 3, H, W)
                with torch.inference_mode():
                    feats = self.model.image_features(images).float().numpy().astype(np.float16)
                for j, i in enumerate(idx):
                    result[i] = feats[j * views:(j + 1) * views]
                    entry = self._entry(hashes[i], seed)
                    entry.parent.mkdir(parents=True, exist_ok=True)
                    tmp = entry.with_suffix(".tmp.npy")
                    np.save(tmp, result[i])
                    os.replace(tmp, entry)
                done += len(idx)
                if progress:
                    progress(done, len(paths))
        return torch.from_numpy(np.stack(result).astype(np.float32))

    def sentence_embeddings(self, texts: list[str], encode: Callable[[list[str]], torch.Tensor], tag: str, batch_size: int = 256) -> torch.Tensor:
        """(N, S) embeddings of `texts` by the frozen `encode`, cached per text list and `tag`."""
        key = hashlib.sha256(("\n".join(texts) + "\0" + tag).encode()).hexdigest()[:24]
        entry = self.root / "sentences" / f"{key}.npy"
        if entry.is_file():
            try:
                return torch.from_numpy(np.load(entry).astype(np.float32))
            except (OSError, ValueError):
                pass
        with torch.inference_mode():
            parts = [encode(texts[i:i + batch_size]).float() for i in range(0, len(texts), batch_size)]
        out = torch.cat(parts).numpy().astype(np.float16)  # what the cache holds, also on the first run
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(".tmp.npy")
        np.save(tmp, out)
        os.replace(tmp, entry)
        return torch.from_numpy(out.astype(np.float32))
