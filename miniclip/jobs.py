"""Entry points for the commands: options in, results out, progress on stderr (tqdm)."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from photosearch.miniclip.config import PRESETS, TrainConfig, with_overrides
from photosearch.miniclip.errors import DataError

DEFAULT_CONCEPT_WEIGHT = 0.25  # chosen on Flickr8k dev and the demo photos (README, "Open vocabulary")


def train_from_options(opts: dict):
    from photosearch.miniclip.pipeline import TrainJob, run_training

    text = opts["model_type"]
    concept = opts.get("concept_weight")
    if concept is None:
        concept = DEFAULT_CONCEPT_WEIGHT if opts["backbone"] == "efficientnet_lite0" and text == "minilm" else 0.0
    model_cfg = with_overrides(
        PRESETS[opts.get("preset") or "default"],
        text_encoder=text, backbone=opts["backbone"], finetune_backbone=opts.get("finetune_backbone") or None,
        concept_weight=concept, word_init=opts.get("word_init"),
    )
    train_cfg = with_overrides(
        TrainConfig(), epochs=opts["epochs"], batch_size=opts["batch_size"], lr=opts["lr"], seed=opts["seed"],
        weight_decay=opts.get("weight_decay"), views=opts.get("views"), patience=opts.get("patience"),
        decay_all=False if opts.get("no_decay_norms") else None, hard_negative_weight=opts.get("hard_negative_weight"),
    )
    if train_cfg.warmup_epochs >= train_cfg.epochs:
        train_cfg = with_overrides(train_cfg, warmup_epochs=max(0, train_cfg.epochs // 5))
    job = TrainJob(
        captions_json=Path(opts["captions_json"]), image_root=Path(opts["image_root"]),
        checkpoint_dir=Path(opts["checkpoint_dir"]), results_dir=Path(opts["results_dir"]),
        val_captions_json=Path(opts["val_captions_json"]) if opts.get("val_captions_json") else None,
        name=opts.get("name"), device=opts["device"], cache_dir=opts.get("cache_dir"),
        backbone_weights=opts.get("backbone_weights"), model=model_cfg, train=train_cfg,
    )
    bars: dict[str, tqdm] = {}

    def on_stage(name: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(total=total, desc=name, unit="img", file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    epochs: list[tqdm] = []  # made at the first epoch, so input errors print alone

    def on_epoch(report) -> None:
        if not epochs:
            epochs.append(tqdm(total=train_cfg.epochs, desc="training", unit="epoch", file=sys.stderr))
        epochs[0].update(1)
        epochs[0].set_postfix(loss=f"{report.train_loss:.3f}", val_R1=f"{report.val['t2i']['R@1']:.1f}",
                           best="*" if report.best else "")

    try:
        return run_training(job, on_epoch=on_epoch, on_stage=on_stage)
    finally:
        for bar in epochs:
            bar.close()


def evaluate_checkpoints(checkpoints: list[str], captions_json: str, image_root: str,
                         concept_weight: float | None, cache_dir: str | None, device: str = "cpu") -> dict:
    """Metrics of each checkpoint (by name) and a random baseline on one captions file.

    Each checkpoint's row also holds `evaluation.trust_report`'s fields: the overlap with the
    photos it trained or validated on, the figures on the photos it never saw, the colour
    queries' figures, and `warnings` (the command prints them on stderr)."""
    from photosearch.miniclip.checkpoint import default_checkpoint_path, load_checkpoint
    from photosearch.miniclip.data import load_captions
    from photosearch.miniclip.evaluation import evaluate, trust_report
    from photosearch.miniclip.features import FeatureCache
    from photosearch.miniclip.metrics import random_baseline
    from photosearch.miniclip.pipeline import pick_device

    data = load_captions(captions_json, image_root)
    if data.skipped:
        print("skipped: " + ", ".join(f"{n} {r}" for r, n in data.skipped.items()), file=sys.stderr)
    rows = {}
    digests = None
    for path in checkpoints or [str(default_checkpoint_path())]:
        model = load_checkpoint(path, device=str(pick_device(device)))
        name = Path(path).stem
        if name in rows:
            raise DataError(f"two checkpoints are named {name!r}; rename one")
        cache = FeatureCache(model, cache_dir)
        digests = digests or cache.digests(data.paths)
        metrics, sim = evaluate(model, data, cache, concept_weight)
        rows[name] = {**metrics, **trust_report(name, model.photos, data, sim, digests)}
    rows["random"] = random_baseline(data.caption_image, len(data.files))
    return rows
