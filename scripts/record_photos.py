"""Record in a checkpoint the photos it was trained and validated on (sha256), for a checkpoint
saved before `photosearch train` did this itself; the fingerprint (and so its ONNX export) stays.

    .venv/bin/python scripts/record_photos.py --checkpoint checkpoints/default.safetensors \
        --train-json ../shared/data/flickr8k/train.json --val-json ../shared/data/flickr8k/dev.json \
        --image-root ../shared/data/flickr8k/images

The shipped checkpoint was trained on Flickr8k train and early-stopped and calibrated on dev
(its `info`: captions_json train.json, concepts calibrated_on dev.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import json

from safetensors.torch import load_file, save_file

from photosearch.miniclip.checkpoint import photo_record
from photosearch.miniclip.checkpoint_header import read_metadata
from photosearch.miniclip.data import load_captions
from photosearch.miniclip.features import photo_digests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--train-json", type=Path, required=True)
    parser.add_argument("--val-json", type=Path, required=True)
    parser.add_argument("--image-root", type=Path, required=True)
    args = parser.parse_args()
    meta = read_metadata(args.checkpoint)
    train = load_captions(args.train_json, args.image_root, check_images=False)
    val = load_captions(args.val_json, args.image_root, check_images=False)
    record = photo_record(photo_digests(train.paths), photo_digests(val.paths))
    # The tensors and every other metadata field are written back as they were (not through
    # save_checkpoint, whose config text may name fields added since), so the fingerprint holds.
    tmp = args.checkpoint.with_name(args.checkpoint.name + ".tmp")
    save_file(load_file(str(args.checkpoint)), str(tmp), metadata={**meta, "photos": json.dumps(record)})
    tmp.chmod(args.checkpoint.stat().st_mode & 0o777)
    tmp.replace(args.checkpoint)
    print(f"{args.checkpoint}: recorded {len(record['train'])} training and {len(record['val'])} validation photos "
          f"(fingerprint {meta['fingerprint']}, unchanged)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
