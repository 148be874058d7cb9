"""Evaluation through the same search vectors the library ranks with: what users get."""

from __future__ import annotations

import numpy as np
import torch

from photosearch.miniclip.data import CaptionSet
from photosearch.miniclip.features import FeatureCache
from photosearch.miniclip.metrics import retrieval_metrics


def image_search_vectors(model, data: CaptionSet, cache: FeatureCache | None, batch_size: int = 64) -> np.ndarray:
    """(N_images, D) search vectors, from cached centre-view features when the backbone is frozen."""
    if cache is not None and not model.config.finetune_backbone:
        feats = cache.image_features(data.paths, views=1)[:, 0]  # (N, C)
        device = model.logit_scale.device
        return np.concatenate([
            model.search_vectors_from_features(feats[i:i + batch_size].to(device)).float().cpu().numpy()
            for i in range(0, len(feats), batch_size)
        ])
    from PIL import Image

    out = []
    for i in range(0, len(data.paths), batch_size):
        images = []
        for p in data.paths[i:i + batch_size]:
            with Image.open(p) as im:
                images.append(model.image_transform(im.convert("RGB")))
        out.append(model.encode_search_images(torch.stack(images)))
    return np.concatenate(out)


def text_search_vectors(model, captions: list[str], concept_weight: float | None = None, batch_size: int = 256) -> np.ndarray:
    return np.concatenate([
        model.encode_search_texts(captions[i:i + batch_size], concept_weight=concept_weight)
        for i in range(0, len(captions), batch_size)
    ])


def similarity(model, data: CaptionSet, cache: FeatureCache | None, concept_weight: float | None = None) -> np.ndarray:
    """(N_captions, N_images) scores, exactly as `photosearch query` would rank."""
    images = image_search_vectors(model, data, cache)
    texts = text_search_vectors(model, data.captions, concept_weight)
    return texts @ images.T


def evaluate(model, data: CaptionSet, cache: FeatureCache | None = None, concept_weight: float | None = None) -> tuple[dict, np.ndarray]:
    model.eval()
    sim = similarity(model, data, cache, concept_weight)
    return retrieval_metrics(sim, data.caption_image), sim


SMALL_SET = 100  # fewer evaluation photos than this and chance alone reaches a high R@10


def restrict(sim: np.ndarray, caption_image: np.ndarray, keep_images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The retrieval problem on a subset of the photos: their captions (rows) against them alone.

    sim (N_captions, N_images); keep_images: image indices -> (sim_sub, caption_image_sub)."""
    keep_images = np.asarray(keep_images, dtype=np.int64)
    remap = np.full(sim.shape[1], -1, dtype=np.int64)
    remap[keep_images] = np.arange(len(keep_images))
    rows = np.flatnonzero(remap[caption_image] >= 0)
    return sim[np.ix_(rows, keep_images)], remap[caption_image[rows]]


def seen_photos(record: dict | None, digests: list[str]) -> dict | None:
    """Which evaluation photos (by sha256 hex) the checkpoint trained or validated on.

    `record` is the checkpoint's `photos` (checkpoint.photo_record) or None for a checkpoint that
    recorded none -> None, else {"train": count, "val": count, "seen": [image indices]}."""
    if not record:
        return None
    width = len(record["train"][0]) if record["train"] else 32
    train, val = set(record["train"]), set(record["val"])
    short = [d[:width] for d in digests]
    seen = [i for i, d in enumerate(short) if d in train or d in val]
    return {"train": sum(d in train for d in short), "val": sum(d in val and d not in train for d in short), "seen": seen}


def trust_report(name: str, record: dict | None, data: CaptionSet, sim: np.ndarray, digests: list[str]) -> dict:
    """What an evaluation's figures can be trusted for, beside the figures themselves.

    -> {"photos": N, "overlap": {"train", "val"} or None (not recorded), "unseen": metrics on the
    photos the checkpoint never saw (None when there is no overlap or nothing is left),
    "colour_t2i": text->image metrics of the captions naming a colour (+ "queries"),
    "warnings": one-line messages}."""
    from photosearch.miniclip.colour_words import colour_query_rows
    from photosearch.miniclip.metrics import random_baseline, summarise, text_to_image_ranks

    n = len(data.files)
    out: dict = {"photos": n, "overlap": None, "unseen": None, "warnings": []}
    seen = seen_photos(record, digests)
    if record is None:
        out["warnings"].append(f"{name} records no training photos (saved by an older photosearch): "
                               "cannot check whether it saw these evaluation photos")
    elif seen["seen"]:
        out["overlap"] = {"train": seen["train"], "val": seen["val"]}
        unseen = np.setdiff1d(np.arange(n), seen["seen"])
        parts = [f"{seen['train']} in training"] + ([f"{seen['val']} in validation"] if seen["val"] else [])
        note = f"{len(seen['seen'])} of {n} evaluation photos were seen by {name} ({', '.join(parts)}): its figures flatter it; "
        if len(unseen):
            sub_sim, sub_owner = restrict(sim, data.caption_image, unseen)
            out["unseen"] = {**retrieval_metrics(sub_sim, sub_owner), "photos": int(len(unseen))}
            note += f"see 'unseen' for the {len(unseen)} others"
        else:
            note += "no unseen photos are left to score"
        out["warnings"].append(note)
    else:
        out["overlap"] = {"train": 0, "val": 0}
    rows = colour_query_rows(data.captions)
    if len(rows):
        out["colour_t2i"] = {**summarise(text_to_image_ranks(sim[rows], data.caption_image[rows])), "queries": int(len(rows))}
    if n < SMALL_SET:
        chance = random_baseline(data.caption_image, n)["t2i"]["R@10"]
        out["warnings"].append(f"only {n} evaluation photos: chance alone reaches R@10 {chance:.1f}; "
                               f"figures on fewer than {SMALL_SET} photos mean little")
    return out
