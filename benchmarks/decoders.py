"""JPEG decoders at reduced size, single thread: Pillow's `Image.draft` against libjpeg-turbo bindings.

    .venv/bin/python -m benchmarks.decoders [--count 24] [--rounds 3] [--extra-path DIR]

The embedder decodes a 12 MP JPEG with libjpeg's DCT scaling, just large enough that the short
side stays >= 224 px (1/8 scale: 500 x 375), then resizes it to the model's square input. This
times, per 12 MP photo (benchmarks.photos, from the file on disk; the page cache warm), on one
thread, interleaved round by round:

- pillow draft: `Image.open` + `draft("RGB", (224, 224))` + `load()`, what `indexer.images` does;
- simplejpeg: `decode_jpeg(bytes, min_width=224, min_height=224)` (its libjpeg-turbo picks the
  same 1/8 scale), also with fastdct + fastupsample;
- PyTurboJPEG: `TurboJPEG().decode(bytes, scaling_factor=(1, 8))`, where libturbojpeg is found;
- and the embedder's whole per-photo step (`load_photo` + `SearchModel.preprocess`, with EXIF
  orientation, mode conversion and the bicubic resize to 224 x 224) as the reference point.

The bindings are optional: install them wherever you like (`pip install --target DIR simplejpeg
PyTurboJPEG`) and pass `--extra-path DIR`; a missing one is reported, not fatal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _decoders(side: int):
    """{name: fn(path) -> (H, W, 3) uint8 array}, the ones importable here; and why others are missing."""
    from PIL import Image

    def pillow(path):
        with Image.open(path) as im:
            im.draft("RGB", (side, side))
            return np.asarray(im)  # draft mode "RGB": libjpeg converts YCbCr itself

    found, missing = {"pillow draft (indexer.images)": pillow}, {}
    try:
        import simplejpeg

        def simple(path, fast=False):
            data = Path(path).read_bytes()
            return simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=side, min_height=side,
                                          fastdct=fast, fastupsample=fast)

        found[f"simplejpeg {getattr(simplejpeg, '__version__', '')}".strip()] = simple
        found["simplejpeg, fastdct + fastupsample"] = lambda p: simple(p, True)
    except ImportError as exc:
        missing["simplejpeg"] = str(exc)
    try:
        from turbojpeg import TJPF_RGB, TurboJPEG

        turbo = TurboJPEG()

        def pyturbo(path):
            data = Path(path).read_bytes()
            width, height, _, _ = turbo.decode_header(data)
            factor = max(f for f in ((1, 8), (1, 4), (1, 2), (1, 1))
                         if min(width, height) * f[0] // f[1] >= side or f == (1, 1))
            return turbo.decode(data, pixel_format=TJPF_RGB, scaling_factor=factor)

        found["PyTurboJPEG (libturbojpeg)"] = pyturbo
    except (ImportError, OSError, RuntimeError) as exc:
        missing["PyTurboJPEG"] = str(exc).splitlines()[0][:120]
    return found, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=24, help="12 MP photos to decode each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-benchmarks")
    parser.add_argument("--extra-path", action="append", default=[], help="a folder holding the bindings")
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args(argv)
    sys.path.extend(args.extra_path)  # after the venv: nothing there may shadow the venv's packages

    from PIL import features

    from benchmarks.models import benchmark_checkpoint
    from benchmarks.photos import photo_set
    from photosearch.indexer.images import load_photo
    from photosearch.miniclip.runtime import load_search_model

    photos = photo_set(args.work_dir, 4000, 3000, max(args.count, 160))  # the comparison's photo set
    paths = [str(p) for p in photos.paths[: args.count]]
    model = load_search_model(benchmark_checkpoint(args.work_dir, False, args.checkpoint)[0])
    side = model.image_size
    decoders, missing = _decoders(side)

    def whole_step(path):  # what Embedder._prepare does with Pillow
        photo = load_photo(path, target=max(1, -(-side // 2)))
        return model.preprocess(photo.image)

    decoders["embedder step: load_photo + preprocess (Pillow)"] = whole_step
    shapes = {name: fn(paths[0]).shape for name, fn in decoders.items()}  # also a warm-up
    times: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(args.rounds):
        for name, fn in decoders.items():
            started = time.perf_counter()
            for path in paths:
                fn(path)
            times[name].append((time.perf_counter() - started) / len(paths) * 1e3)
    print(f"Pillow {features.version('pil')} (libjpeg-turbo {features.version('libjpeg_turbo')}); "
          f"{len(paths)} photos of 4000x3000 ({photos.mean_bytes / 1e6:.1f} MB), {args.rounds} rounds, one thread")
    print(f"{'decoder':52} {'ms/photo median':>15} {'spread':>15}  output")
    for name, ms in times.items():
        print(f"{name:52} {statistics.median(ms):15.1f} {min(ms):7.1f}-{max(ms):<7.1f}  {shapes[name]}")
    for name, why in missing.items():
        print(f"{name}: not measured ({why})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
