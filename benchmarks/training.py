"""Training: seconds per epoch on the Flickr8k train split, with and without the feature cache.

- With the cache (what `photosearch train` does): `miniclip.pipeline.run_training` itself,
  two epochs, the default model (frozen EfficientNet-Lite0 and MiniLM, heads trained); an
  epoch's seconds are the loop's own (`EpochReport.seconds`: the heads' steps on cached
  features plus validation). Missing cache entries are computed first, once, and reported.
- Without it (the backbone on every caption's image in every epoch, on freshly augmented
  views): the cost of one row (decode + augment + backbone forward, batches of 32, decoding
  in two threads as the cache builder does) is timed on a sample of train images and
  extrapolated to a whole epoch: rows x that cost + the cached epoch's seconds.

Skipped cleanly when the data set is absent. `--quick` trains the tiny preset on a dozen
generated images instead.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.models import TRAINING_CONCEPT_WEIGHT
from benchmarks.report import Report

FLICKR8K = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "flickr8k"
TARGET_S = 20.0


def run(report: Report, work: Path, quick: bool, data: Path | None, cache_dir: Path | None,
        batch_sizes: list[int], log=print) -> None:
    from miniclip.config import PRESETS, with_overrides

    if quick:
        train_json, images, val_json = _tiny_dataset(work / "quick-train")
        config, label, sample = PRESETS["tiny"], "tiny generated set", 4
        cache_dir = work / "quick-feature-cache"
    else:
        data = Path(data) if data else FLICKR8K
        train_json, images, val_json = data / "train.json", data / "images", data / "dev.json"
        if not train_json.is_file() or not images.is_dir():
            report.skip("training", "epoch on Flickr8k train", f"no Flickr8k at {data} (train.json + images/)")
            return
        config = with_overrides(PRESETS["default"], concept_weight=TRAINING_CONCEPT_WEIGHT)
        label, sample = "Flickr8k train", 128
    heads_s = None
    for batch_size in batch_sizes:
        log(f"training: two epochs at batch size {batch_size} on cached features")
        epochs, stages, rows = _cached_epochs(work, train_json, images, val_json, cache_dir, config, batch_size)
        if stages:
            report.add("training", "build the feature cache (one-off)", f"{sum(stages.values()):.0f} s",
                       note=", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))
        seconds = epochs[-1].seconds
        heads_s = heads_s or seconds
        is_default = batch_size == 32
        report.add("training", f"epoch, cached features, batch {batch_size} ({label})", f"{seconds:.1f} s",
                   f"<= {TARGET_S:g} s" if not quick else "", (seconds <= TARGET_S) if not quick else None,
                   note=(f"`photosearch train` default batch; " if is_default else "")
                        + f"{rows:,} caption rows; epoch 1 took {epochs[0].seconds:.1f} s; includes validation",
                   number=seconds)
    per_row, measured = _uncached_row_seconds(train_json, images, config, sample)
    epoch = rows * per_row + heads_s
    report.add("training", f"epoch without cache ({label}), extrapolated", f"{epoch:.0f} s",
               note=f"{rows:,} rows x {per_row * 1e3:.1f} ms (decode+augment+backbone, measured on {measured} "
                    f"images) + {heads_s:.1f} s heads", number=epoch)


def _cached_epochs(work, train_json, images, val_json, cache_dir, config, batch_size):
    """(epoch reports, feature stages that had work {name: seconds}, caption rows)."""
    from miniclip.config import TrainConfig
    from miniclip.pipeline import TrainJob, run_training

    epochs, stage_times, stage_start = [], {}, {}

    def on_stage(name: str, done: int, total: int) -> None:
        if name not in stage_start:
            stage_start[name] = (time.perf_counter(), done)
        started, first = stage_start[name]
        if done >= total and done > first:  # it computed something: the cache was incomplete
            stage_times[name] = time.perf_counter() - started

    job = TrainJob(captions_json=train_json, image_root=images, val_captions_json=val_json,
                   checkpoint_dir=work / "train-checkpoints", results_dir=work / "train-results",
                   name=f"benchmark-b{batch_size}", device="cpu", cache_dir=cache_dir, model=config,
                   train=TrainConfig(epochs=2, batch_size=batch_size, warmup_epochs=1))
    run_training(job, on_epoch=epochs.append, on_stage=on_stage)
    rows = len(json.loads(Path(train_json).read_text()))
    return epochs, stage_times, rows


def _uncached_row_seconds(train_json: Path, images: Path, config, sample: int) -> tuple[float, int]:
    """Seconds per row for decode + augment + backbone forward, batches of 32 (or fewer)."""
    import torch
    from PIL import Image

    from miniclip.model import MiniCLIP

    names = list(dict.fromkeys(e["file_name"] for e in json.loads(Path(train_json).read_text())))[:sample]
    model = MiniCLIP(config).eval()
    augment = model.augment_transform

    def view(name: str) -> torch.Tensor:
        with Image.open(images / name) as im:
            return augment(im.convert("RGB"))

    batch_size = min(32, len(names))
    with ThreadPoolExecutor(2) as pool:
        model.image_features(torch.stack(list(pool.map(view, names[:batch_size]))))  # warm-up
        started = time.perf_counter()
        for start in range(0, len(names), batch_size):
            batch = torch.stack(list(pool.map(view, names[start:start + batch_size])))
            with torch.inference_mode():
                model.image_features(batch.contiguous(memory_format=torch.channels_last))
        seconds = time.perf_counter() - started
    return seconds / len(names), len(names)


def _tiny_dataset(root: Path) -> tuple[Path, Path, Path]:
    """12 coloured shapes with 3 captions each (train) and 4 more (validation)."""
    from PIL import Image, ImageDraw

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    colours = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 60, 220), "yellow": (235, 210, 40)}
    train, val = [], []
    for i, (colour, rgb) in enumerate(colours.items()):
        for j, shape in enumerate(("circle", "square", "triangle", "disc")):
            name = f"{colour}_{shape}.png"
            image = Image.new("RGB", (64, 64), (230, 230, 230))
            draw = ImageDraw.Draw(image)
            box = (12 + j * 2, 12 + i * 2, 52 - j, 52 - i)
            (draw.ellipse if shape in ("circle", "disc") else draw.rectangle)(box, fill=rgb)
            image.save(images / name)
            target = val if shape == "disc" else train
            target += [{"file_name": name, "caption": c} for c in (f"a {colour} {shape}", f"{colour} {shape} on grey")]
    (root / "train.json").write_text(json.dumps(train))
    (root / "val.json").write_text(json.dumps(val))
    return root / "train.json", images, root / "val.json"
