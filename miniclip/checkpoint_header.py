"""A checkpoint's header: its format tag and metadata (config, vocabulary, fingerprint), read
without torch, so the query path can look at a checkpoint before deciding what to load."""

from __future__ import annotations

from pathlib import Path

from photosearch.miniclip.errors import CheckpointError

FORMAT = "photosearch-miniclip/1"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "default.safetensors"


def default_checkpoint_path() -> Path:
    return DEFAULT_CHECKPOINT


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except Exception:
        raise CheckpointError(f"{path} is not a photosearch checkpoint (corrupt, or not a safetensors file)") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a photosearch checkpoint (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta
