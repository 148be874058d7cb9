"""Captioned photos: reading captions.json, checking it, splitting by image, and batching pairs."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from photosearch.miniclip.errors import DataError


@dataclass
class CaptionSet:
    """Images (unique, in first-seen order) and their captions; caption i describes image caption_image[i]."""

    image_root: Path
    files: list[str]
    captions: list[str]
    caption_image: np.ndarray  # (N_captions,) int
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    @property
    def paths(self) -> list[Path]:
        return [self.image_root / f for f in self.files]

    def subset(self, image_indices) -> "CaptionSet":
        keep = sorted(set(int(i) for i in image_indices))
        remap = {old: new for new, old in enumerate(keep)}
        rows = [i for i, img in enumerate(self.caption_image) if int(img) in remap]
        return CaptionSet(
            self.image_root,
            [self.files[i] for i in keep],
            [self.captions[i] for i in rows],
            np.array([remap[int(self.caption_image[i])] for i in rows], dtype=np.int64),
        )


def _read_entries(json_path: Path) -> list:
    if not json_path.is_file():
        raise DataError(f"captions file not found: {json_path}")
    try:
        entries = json.loads(json_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{json_path} is not UTF-8 text; save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{json_path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    if not isinstance(entries, list):
        raise DataError(f'{json_path} must hold a JSON list of {{"file_name": ..., "caption": ...}} objects')
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("file_name"), str) or not isinstance(e.get("caption"), str):
            raise DataError(
                f'{json_path}: entry {i} is not {{"file_name": "<image>", "caption": "<text>"}} (got {str(e)[:80]})'
            )
    return entries


def _image_readable(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


def load_captions(json_path: str | Path, image_root: str | Path, check_images: bool = True) -> CaptionSet:
    """Read and check a captions file; bad entries are skipped and counted in `skipped`."""
    json_path, image_root = Path(json_path), Path(image_root)
    if not image_root.is_dir():
        raise DataError(f"image folder not found: {image_root}")
    entries = _read_entries(json_path)
    if not entries:
        raise DataError(f"{json_path} holds no captions")
    skipped: Counter = Counter()
    readable: dict[str, bool] = {}
    files: list[str] = []
    index: dict[str, int] = {}
    captions: list[str] = []
    owners: list[int] = []
    for e in entries:
        name, caption = e["file_name"], " ".join(e["caption"].split())
        if not caption:
            skipped["empty caption"] += 1
            continue
        if name not in readable:
            path = image_root / name
            readable[name] = path.is_file() and (not check_images or _image_readable(path))
            if not readable[name]:
                skipped["missing image" if not path.is_file() else "unreadable image"] += 1
        if not readable[name]:
            continue
        if name not in index:
            index[name] = len(files)
            files.append(name)
        captions.append(caption)
        owners.append(index[name])
    if not captions:
        reasons = ", ".join(f"{n} {r}" for r, n in skipped.items()) or "nothing usable"
        raise DataError(f"{json_path}: no usable captions ({reasons}); check file names against {image_root}")
    return CaptionSet(image_root, files, captions, np.array(owners, dtype=np.int64), skipped)


def split_by_image(data: CaptionSet, val_fraction: float, test_fraction: float, seed: int):
    """Seeded train/val/test split of the images, so no image crosses splits."""
    n = len(data.files)
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction))) if n >= 3 else 0
    n_test = max(1, int(round(n * test_fraction))) if n >= 3 and test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        raise DataError(f"only {n} usable images: too few to split into train/val/test; add photos or pass --val-captions-json")
    val, test, train = order[:n_val], order[n_val:n_val + n_test], order[n_val + n_test:]
    return data.subset(train), data.subset(val), data.subset(test)


def epoch_batches(caption_image: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Caption indices in batches that never hold two captions of one image.

    An epoch visits every caption once: round r takes each image's r-th caption (in a shuffled
    order per image), and each round is batched separately over a permutation of its images.
    """
    per_image: dict[int, list[int]] = {}
    for cap, img in enumerate(caption_image):
        per_image.setdefault(int(img), []).append(cap)
    for caps in per_image.values():
        rng.shuffle(caps)
    rounds = max(len(c) for c in per_image.values())
    batches = []
    for r in range(rounds):
        picked = np.array([caps[r % len(caps)] for caps in per_image.values() if r < len(caps) or r == 0], dtype=np.int64)
        picked = picked[rng.permutation(len(picked))]
        batches += [picked[i:i + batch_size] for i in range(0, len(picked), batch_size) if len(picked[i:i + batch_size]) > 1]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]
