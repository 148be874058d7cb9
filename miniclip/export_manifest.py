"""What `photosearch export` writes beside a checkpoint, and the checks before it is used.

For a checkpoint `NAME.safetensors` the export is three files in the same folder:

- `NAME.image.onnx`: uint8 pixels (B, S, S, 3), RGB, already resized to the model's square
  input -> search vectors (B, D) float32 (normalisation, backbone, projection head and ConSE
  concept vector all inside the graph);
- `NAME.text.onnx`: the text side after the sentence encoder -> query vectors (B, D) float32,
  with inputs `sentences` (B, 384) float32 (MiniLM embeddings, where the tower or the fusion
  needs them) and/or `ids` (B, T) int64 + `lengths` (B,) int64 (word-level towers);
- `NAME.export.json`: this manifest: the checkpoint fingerprint it was made from, every file's
  sha256, the preprocessing, and the *model fingerprint* the library stores.

The model fingerprint covers what actually computes the vectors: the checkpoint, both ONNX
graphs, the MiniLM weights the queries run through and the preprocessing. Re-exporting with
other settings changes it, so a library never mixes vectors of two exports.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from photosearch.miniclip.errors import CheckpointError
from photosearch.miniclip.file_hashes import verify_sha256

FORMAT = "photosearch-export/1"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the repo root, or site-packages/photosearch
BUNDLED_DIR = PACKAGE_ROOT / "checkpoints"
MINILM_DIR = BUNDLED_DIR / "minilm"  # all-MiniLM-L6-v2 for the query path (weights without the pooler)
MINILM_WEIGHTS = "model.safetensors"
MINILM_TOKENIZER = "tokenizer.json"
MAX_MANIFEST_BYTES = 1 << 20  # a real manifest is under 2 KB


class ExportError(CheckpointError):
    """The ONNX export of a checkpoint is missing, stale or corrupt; the message says what to run."""


@dataclass(frozen=True)
class ExportPaths:
    """Where the export of one checkpoint lives."""

    checkpoint: Path
    image: Path
    text: Path
    manifest: Path

    @classmethod
    def of(cls, checkpoint: str | os.PathLike) -> "ExportPaths":
        """Beside the checkpoint; for a symlinked checkpoint with no export beside the link, beside
        the file it points to."""
        checkpoint = Path(checkpoint)
        paths = cls._beside(checkpoint, checkpoint)
        if not paths.manifest.exists() and checkpoint.is_symlink():
            real = cls._beside(checkpoint, checkpoint.resolve())
            if real.manifest.exists():
                return real
        return paths

    @classmethod
    def _beside(cls, checkpoint: Path, target: Path) -> "ExportPaths":
        stem, folder = target.name.removesuffix(".safetensors"), target.parent
        return cls(checkpoint, folder / f"{stem}.image.onnx", folder / f"{stem}.text.onnx",
                   folder / f"{stem}.export.json")

    def export_command(self) -> str:
        return f"photosearch export --checkpoint {self.checkpoint}"


FINGERPRINTED = ("checkpoint_fingerprint", "files", "preprocessing", "search_dim", "text_encoder")
TEXT_ENCODERS = ("minilm", "lstm", "transformer", "bow")


def model_fingerprint(manifest: dict) -> str:
    """16 hex digits naming everything that computes a library's vectors (see module docstring):
    the manifest's FINGERPRINTED fields, which name the checkpoint, every file by sha256, the
    preprocessing and the vectors' shape."""
    core = {key: manifest[key] for key in FINGERPRINTED}
    return hashlib.sha256((FORMAT + json.dumps(core, sort_keys=True)).encode()).hexdigest()[:16]


def _well_formed(manifest) -> bool:
    """Whether a parsed manifest has every field with the type the runtime relies on."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return False
    files, pre = manifest.get("files"), manifest.get("preprocessing")
    return (isinstance(manifest.get("checkpoint_fingerprint"), str) and isinstance(manifest.get("fingerprint"), str)
            and isinstance(files, dict) and {"image", "text"} <= set(files)
            and all(isinstance(v, str) and len(v) == 64 for v in files.values())
            and isinstance(pre, dict) and isinstance(pre.get("size"), int) and not isinstance(pre["size"], bool)
            and 16 <= pre["size"] <= 1024
            and isinstance(manifest.get("search_dim"), int) and not isinstance(manifest["search_dim"], bool)
            and 1 <= manifest["search_dim"] <= 65536
            and manifest.get("text_encoder") in TEXT_ENCODERS)


def write_manifest(paths: ExportPaths, manifest: dict) -> None:
    """Write the manifest atomically (temp file, rename), after the files it names."""
    tmp = paths.manifest.with_name(paths.manifest.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(paths.manifest)


def read_manifest(paths: ExportPaths, checkpoint_fingerprint: str) -> dict:
    """The manifest of a checkpoint's export, checked against the checkpoint (not the files).

    Raises ExportError when the export is missing, unreadable, or made from another version of
    the checkpoint (stale); the message says which command makes it again.
    """
    again = f"run `{paths.export_command()}`"
    if not paths.manifest.exists():
        raise ExportError(f"{paths.checkpoint} has no ONNX export ({paths.manifest.name} is missing): {again} "
                          "(needs the training extra: pip install 'photosearch[train]')")
    try:
        if paths.manifest.stat().st_size > MAX_MANIFEST_BYTES:  # bounded before it is read
            raise ValueError("too large")
        manifest = json.loads(paths.manifest.read_text())
    except PermissionError:
        raise ExportError(f"cannot read {paths.manifest}: permission denied") from None
    except (OSError, ValueError):
        manifest = None
    if not _well_formed(manifest):
        raise ExportError(f"the ONNX export of {paths.checkpoint} is corrupt ({paths.manifest.name} "
                          f"cannot be read): {again}")
    made_from = manifest["checkpoint_fingerprint"]
    if made_from != checkpoint_fingerprint:
        raise ExportError(f"the ONNX export of {paths.checkpoint} is stale (made from checkpoint {made_from}, "
                          f"the checkpoint is now {checkpoint_fingerprint}): {again}")
    if manifest["fingerprint"] != model_fingerprint(manifest):
        raise ExportError(f"the ONNX export of {paths.checkpoint} is corrupt (its fingerprint does not "
                          f"match its files): {again}")
    return manifest


def verified_file(paths: ExportPaths, manifest: dict, role: str) -> Path:
    """The path of export file `role` ("image" or "text"), its sha256 checked against the manifest."""
    path = paths.image if role == "image" else paths.text
    digest = manifest["files"].get(role)
    if not path.is_file():
        raise ExportError(f"{path} is missing: run `{paths.export_command()}`")
    try:
        verify_sha256(path, digest, f"the ONNX {role} tower of {paths.checkpoint.name}")
    except CheckpointError:
        raise ExportError(f"{path} is corrupt (its sha256 differs from {paths.manifest.name}): "
                          f"run `{paths.export_command()}`") from None
    return path
