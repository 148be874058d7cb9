"""`photosearch train`: data -> features -> fit -> checkpoint, metrics and figures."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from photosearch.miniclip import plots
from photosearch.miniclip.checkpoint import photo_record, save_checkpoint
from photosearch.miniclip.export import export_model
from photosearch.miniclip.config import PRESETS, ModelConfig, TrainConfig
from photosearch.miniclip.data import CaptionSet, epoch_batches, load_captions, split_by_image
from photosearch.miniclip.errors import DataError
from photosearch.miniclip.evaluation import evaluate, trust_report
from photosearch.miniclip.features import FeatureCache
from photosearch.miniclip.loss import ClipLoss
from photosearch.miniclip.metrics import random_baseline, retrieval_metrics
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.tokenizer import WordTokenizer
from photosearch.miniclip.train import EpochReport, fit

log = logging.getLogger(__name__)


@dataclass
class TrainJob:
    """What to train on and where to write; model and optimiser settings are in the configs."""

    captions_json: Path
    image_root: Path
    checkpoint_dir: Path = Path("checkpoints")
    results_dir: Path = Path("results")
    val_captions_json: Path | None = None
    name: str | None = None
    device: str = "auto"
    cache_dir: Path | None = None
    backbone_weights: str | None = None
    model: ModelConfig = field(default_factory=lambda: PRESETS["default"])
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class TrainOutcome:
    checkpoint: Path
    metrics: dict
    metrics_path: Path
    best_epoch: int
    epochs_run: int
    seconds: float
    skipped: dict
    warnings: list[str] = field(default_factory=list)  # what the evaluation's figures cannot be trusted for


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda was asked for, but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def _splits(job: TrainJob) -> tuple[CaptionSet, CaptionSet, CaptionSet, dict]:
    data = load_captions(job.captions_json, job.image_root)
    skipped = dict(data.skipped)
    if job.val_captions_json:
        val = load_captions(job.val_captions_json, job.image_root)
        skipped.update({f"val {k}": v for k, v in val.skipped.items()})
        return data, val, val, skipped
    train, val, test = split_by_image(data, job.train.val_fraction, job.train.test_fraction, job.train.seed)
    return train, val, test, skipped


class _TextInputs:
    """Caption inputs for the text tower, prepared once: token ids or cached sentence embeddings."""

    def __init__(self, model: MiniCLIP, captions: list[str], cache: FeatureCache, device):
        self.device = device
        if model.config.text_encoder == "minilm" and model.config.minilm_finetune_layers == 0:
            encoder = model.text_encoder
            self.kind, self.values = "sentences", cache.sentence_embeddings(captions, encoder.sentence_embeddings, "all-MiniLM-L6-v2:eval")
        elif model.config.text_encoder == "minilm":
            self.kind, self.values = "raw", captions
        else:
            self.kind, self.values = "tokens", model.tokenizer.batch(captions)

    def take(self, rows: np.ndarray):
        if self.kind == "sentences":
            return self.values[rows].to(self.device)
        if self.kind == "raw":
            return [self.values[i] for i in rows]
        ids, lengths = self.values
        ids, lengths = ids[rows], lengths[rows]
        return ids[:, : int(lengths.max())].to(self.device), lengths.to(self.device)


def run_training(job: TrainJob, on_epoch: Callable[[EpochReport], None] | None = None,
                 on_stage: Callable[[str, int, int], None] | None = None) -> TrainOutcome:
    start = time.perf_counter()
    cfg = job.train
    torch.manual_seed(cfg.seed)
    device = pick_device(job.device)
    train, val, test, skipped = _splits(job)
    tokenizer = None
    if job.model.text_encoder != "minilm":
        tokenizer = WordTokenizer.build(train.captions, max_words=job.model.vocab_size, max_len=job.model.max_len)
    model = MiniCLIP(job.model, tokenizer, job.backbone_weights)
    if tokenizer is not None and job.model.word_init == "minilm":
        _start_from_minilm_words(model, tokenizer)
    model = model.to(device)
    cache = FeatureCache(model, job.cache_dir)
    stage = (lambda name: (lambda done, total: on_stage(name, done, total))) if on_stage else (lambda name: None)
    if job.model.finetune_backbone:
        train_images = _ImageLoader(model, train.paths, augment=True, seed=cfg.seed)
        val_images = _ImageLoader(model, val.paths, augment=False, seed=cfg.seed)
    else:
        train_feats = cache.image_features(train.paths, views=cfg.views, seed=cfg.seed, progress=stage("train features")).to(device)
        val_feats = cache.image_features(val.paths, views=1, seed=cfg.seed, progress=stage("val features"))[:, 0].to(device)
    train_text = _TextInputs(model, train.captions, cache, device)
    val_text = _TextInputs(model, val.captions, cache, device)
    loss = ClipLoss(cfg.hard_negative_weight, cfg.hard_negative_margin)

    def batches(epoch: int):
        rng = np.random.default_rng([cfg.seed, max(epoch, 0)])
        for rows in epoch_batches(train.caption_image, cfg.batch_size, rng):
            if epoch < 0:  # counting steps only
                yield None
            elif job.model.finetune_backbone:
                yield train_images.load(train.caption_image[rows], epoch).to(device), train_text.take(rows)
            else:
                images = torch.as_tensor(train.caption_image[rows], device=device)
                views = torch.as_tensor(rng.integers(0, cfg.views, len(rows)), device=device)
                yield train_feats[images, views], train_text.take(rows)

    def current_val_features(m: MiniCLIP) -> torch.Tensor:
        if not job.model.finetune_backbone:
            return val_feats
        rows = np.arange(len(val.files))
        return torch.cat([m.image_features(val_images.load(rows[i:i + 64]).to(device)) for i in range(0, len(rows), 64)])

    def validate(m: MiniCLIP):
        with torch.inference_mode():
            feats = current_val_features(m)
            img = torch.cat([m.encode_image(feats[i:i + 512]) for i in range(0, len(feats), 512)])
            rows = np.arange(len(val.captions))
            txt = torch.cat([m.encode_text(val_text.take(rows[i:i + 512])) for i in range(0, len(rows), 512)])
        metrics = retrieval_metrics((txt @ img.T).cpu().numpy(), val.caption_image)
        return metrics["mean_recall"], metrics

    result = fit(model, batches, lambda m, b: loss(*m(*b)), validate, cfg, on_epoch)
    if model.uses_concepts:
        model.build_concept_table()
        with torch.inference_mode():
            model.calibrate(current_val_features(model))
    name = job.name or model.config.text_encoder
    info = {
        "name": name, "captions_json": str(job.captions_json), "train_images": len(train.files),
        "train_captions": len(train.captions), "best_epoch": result.best_epoch,
        "epochs_run": len(result.history), "train_config": asdict(cfg),
    }
    checkpoint = Path(job.checkpoint_dir) / f"{name}.safetensors"
    photos = photo_record(cache.digests(train.paths), cache.digests(val.paths))
    save_checkpoint(model, checkpoint, info, photos)
    export_model(model, checkpoint)  # the ONNX towers the serving path runs
    metrics, sim = evaluate(model, test, cache)
    trust = trust_report(name, photos, test, sim, cache.digests(test.paths))
    seconds = time.perf_counter() - start
    report = {
        "name": name, "checkpoint": str(checkpoint), "fingerprint": model.fingerprint,
        "eval_split": "val" if job.val_captions_json else "test", "eval_images": len(test.files),
        "eval_captions": len(test.captions), "metrics": metrics,
        **{k: trust[k] for k in ("overlap", "unseen", "colour_t2i", "warnings") if k in trust},
        "random": random_baseline(test.caption_image, len(test.files), cfg.seed),
        "best_epoch": result.best_epoch, "epochs_run": len(result.history), "seconds": round(seconds, 1),
        "skipped": skipped,
        "history": [{"epoch": h.epoch, "loss": h.train_loss, "val_t2i": h.val["t2i"], "val_i2t": h.val["i2t"],
                     "seconds": h.seconds} for h in result.history],
    }
    results = Path(job.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    metrics_path = results / f"metrics_{name}.json"
    metrics_path.write_text(json.dumps(report, indent=2))
    plots.training_curves(result.history, results / f"training_curves_{name}.png")
    plots.retrieval_examples(test, sim, results / f"retrieval_results_{name}.png", seed=cfg.seed)
    plots.metrics_comparison({name: metrics, "random": report["random"]}, results / "metrics_comparison.png")
    return TrainOutcome(checkpoint, metrics, metrics_path, result.best_epoch, len(result.history), seconds, skipped,
                        trust["warnings"])


def _start_from_minilm_words(model: MiniCLIP, tokenizer: WordTokenizer) -> None:
    """Word embeddings of the vocabulary start from MiniLM's (padding stays zero, specials random)."""
    from photosearch.miniclip.tokenizer import SPECIALS
    from photosearch.miniclip.word_vectors import minilm_word_vectors

    embed = model.text_encoder.embed
    vectors = minilm_word_vectors(tokenizer.itos[len(SPECIALS):], embed.embedding_dim)
    if vectors is not None:
        with torch.no_grad():
            embed.weight[len(SPECIALS):] = torch.from_numpy(vectors)


class _ImageLoader:
    """Photos decoded on the fly (for --finetune-backbone): augmented for training (a random crop
    per photo and epoch, drawn from (seed, photo, epoch)), else the eval view."""

    def __init__(self, model: MiniCLIP, paths: list[Path], augment: bool, seed: int):
        self.paths, self.seed = paths, seed
        self.augment = model.augment_transform if augment else None
        self.transform = model.image_transform

    def _one(self, index: int, epoch: int) -> torch.Tensor:
        from PIL import Image

        from photosearch.miniclip.transforms import view_rng

        with Image.open(self.paths[int(index)]) as im:
            image = im.convert("RGB")
        if self.augment is None:
            return self.transform(image)
        return self.augment(image, view_rng(self.seed, str(int(index)), 2 + epoch))

    def load(self, indices, epoch: int = 0) -> torch.Tensor:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2) as pool:
            return torch.stack(list(pool.map(lambda i: self._one(i, epoch), indices)))  # (B, 3, H, W)
