"""Indexing: `photosearch index` end to end on camera-sized JPEGs, and where the time goes.

1. `photosearch --library L index DIR --json` as a fresh process on generated photos (12 MP
   and 2 MP). The rate is photos over the scan's own seconds (fingerprint, decode, model,
   SQLite and FAISS, overlapped as the indexer runs them); the process's wall time, with
   start-up and model loading, is in the note.
2. The split: single-threaded milliseconds per photo for fingerprinting, decoding (as the
   embedder decodes: reduced-size JPEG decoding), preprocessing (`model.image_transform`) and
   the model (per photo, batches of 32, on the embedder's torch threads).
3. Fidelity: cosine between the embedder's vectors and a reference path (full-resolution
   decode, plain float32 model): the fast path must stay >= 0.99.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.models import run_photosearch
from benchmarks.photos import PhotoSet, photo_set
from benchmarks.report import Report

TARGET_12MP = 20.0  # photos/s


def run(report: Report, checkpoint: Path, work: Path, quick: bool, count_12mp: int, count_2mp: int) -> None:
    if quick:
        sets = [("tiny", photo_set(work, 320, 240, 3, workers=1))]
    else:
        sets = [("12 MP", photo_set(work, 4000, 3000, count_12mp)), ("2 MP", photo_set(work, 1920, 1080, count_2mp))]
    for label, photos in sets:
        _end_to_end(report, checkpoint, work, label, photos)
    split_photos = sets[0][1]
    _split(report, checkpoint, sets[0][0], split_photos, sample=3 if quick else 24)


def _end_to_end(report: Report, checkpoint: Path, work: Path, label: str, photos: PhotoSet) -> None:
    library = work / f"index-library-{photos.width}x{photos.height}"
    shutil.rmtree(library, ignore_errors=True)
    wall, result = run_photosearch(["--library", library, "index", photos.folder, "--checkpoint", checkpoint, "--json"])
    scan = json.loads(result.stdout)
    shutil.rmtree(library, ignore_errors=True)
    n = len(photos.paths)
    if scan["added"] != n:
        raise RuntimeError(f"indexing added {scan['added']} of {n} photos: {scan['failures'][:3]}")
    rate = n / scan["seconds"]
    is_12mp = photos.width * photos.height >= 11_000_000
    report.add(
        "indexing", f"photosearch index, {label} JPEG ({photos.width}x{photos.height}, "
                    f"{photos.mean_bytes / 1e6:.1f} MB, {photos.bits_per_pixel:.1f} bpp)",
        f"{rate:.1f} photos/s", f">= {TARGET_12MP:g} photos/s" if is_12mp else "",
        (rate >= TARGET_12MP) if is_12mp else None,
        note=f"{n} photos: scan {scan['seconds']:.1f} s; whole process {wall:.1f} s "
             f"({n / wall:.1f} photos/s with start-up and model load)",
        number=rate)


def _split(report: Report, checkpoint: Path, label: str, photos: PhotoSet, sample: int) -> None:
    import torch

    from photosearch.indexer import service
    from photosearch.indexer.embedder import Embedder
    from photosearch.indexer.fingerprint import file_fingerprint
    from photosearch.indexer.images import load_photo

    model = service.load_model(checkpoint)
    paths = photos.paths[:sample]
    with Embedder(model) as embedder:
        threads, half = embedder.torch_threads, max(1, -(-embedder.decode_side // 2))
        transform = model.image_transform
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)  # as the embedder runs them
        try:
            fingerprint_s = _each(paths, file_fingerprint)
            decode_s = _each(paths, lambda p: load_photo(p, target=half))
            decoded = [load_photo(p, target=half).image for p in paths]
            preprocess_s = _each(decoded, transform)
            batch = torch.stack([transform(im) for im in decoded])
            batch = torch.cat([batch] * -(-32 // len(batch)))[:32]
            if embedder.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            model_s = _model_seconds(model, batch, embedder.precision)
        finally:
            torch.set_num_threads(previous)
        embedder.embed_files(paths[:2])  # warm-up
        started = time.perf_counter()
        fast, errors = embedder.embed_files(paths)
        pipeline_rate = len(paths) / (time.perf_counter() - started)
    precision = f"{embedder.precision}, {'channels_last' if embedder.channels_last else 'contiguous'}"
    total = fingerprint_s + decode_s + preprocess_s + model_s * threads
    where = f"{label} photos, ms per photo on one core"
    for name, seconds, note in (
        ("fingerprint (blake2b of the file)", fingerprint_s, ""),
        ("decode (reduced-size JPEG, EXIF, RGB)", decode_s, f"to a short side >= {embedder.decode_side} px"),
        ("preprocess (model.image_transform)", preprocess_s, ""),
        ("model (backbone + heads, batch 32)", model_s, f"{threads} torch thread(s), {precision}"),
    ):
        share = seconds * (threads if name.startswith("model") else 1) / total
        report.add("indexing", f"split: {name}", f"{seconds * 1e3:.1f} ms", note=f"{where}; {share:.0%} of CPU time; {note}".rstrip("; "),
                   number=seconds * 1e3)
    report.add("indexing", "split: embedder in-process (decode || model)", f"{pipeline_rate:.1f} photos/s",
               note=f"{len(paths)} photos, no SQLite; {len(errors)} errors")
    cosines = _fidelity(model, paths[: min(8, len(paths))], fast)
    report.add("indexing", "fast path vs full-res float reference: min cosine", f"{min(cosines):.4f}", ">= 0.99",
               min(cosines) >= 0.99, note=f"mean {np.mean(cosines):.4f} over {len(cosines)} photos", number=min(cosines))


def _each(items, fn) -> float:
    """Mean seconds of fn(item), one at a time, after one untimed call."""
    fn(items[0])
    started = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - started) / len(items)


def _model_seconds(model, batch, precision: str) -> float:
    """Seconds per photo of encode_search_images on `batch` (best of 3 runs), as the embedder runs it."""
    import torch

    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16")
    with autocast:
        model.encode_search_images(batch)  # warm-up
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            model.encode_search_images(batch)
            runs.append(time.perf_counter() - started)
    return min(runs) / len(batch)


def _fidelity(model, paths: list[Path], fast: dict) -> list[float]:
    """Cosine of each fast-path vector with the reference: full decode, contiguous float32 model."""
    import torch
    from PIL import Image, ImageOps

    model.image_trunk.to(memory_format=torch.contiguous_format)
    images = []
    for path in paths:
        with Image.open(path) as im:
            images.append(model.image_transform(ImageOps.exif_transpose(im).convert("RGB")))
    reference = model.encode_search_images(torch.stack(images))
    cosines = []
    for path, ref in zip(paths, reference):
        vec = fast[str(path)]
        cosines.append(float(vec @ ref / (np.linalg.norm(vec) * np.linalg.norm(ref) + 1e-12)))
    return cosines
