"""Which checkpoint the benchmarks time, and how the photosearch processes are started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from photosearch.miniclip.jobs import (
    DEFAULT_CONCEPT_WEIGHT as TRAINING_CONCEPT_WEIGHT,  # what `photosearch train` ships
)


def benchmark_checkpoint(work: Path, quick: bool, given: str | None = None) -> tuple[Path, str]:
    """(checkpoint, how it was chosen).

    Given one, that; --quick, a tiny untrained model (seconds to load); else the shipped
    checkpoint, or, while there is none, an untrained model of the same architecture as the
    shipped one (same cost: timing does not depend on the weights).
    """
    if given:
        return Path(given), "given"
    from photosearch.miniclip.checkpoint import default_checkpoint_path

    if quick:
        return _untrained(work / "tiny-untrained.safetensors", tiny=True), "tiny preset, untrained (--quick)"
    shipped = default_checkpoint_path()
    if shipped.is_file():
        return shipped, "shipped"
    return _untrained(work / "default-untrained.safetensors", tiny=False), "default preset, untrained (no shipped checkpoint yet)"


def _untrained(path: Path, tiny: bool) -> Path:
    if path.is_file():
        return path
    import torch

    from photosearch.miniclip.checkpoint import save_checkpoint
    from photosearch.miniclip.config import PRESETS, with_overrides
    from photosearch.miniclip.export import export_model
    from photosearch.miniclip.model import MiniCLIP
    from photosearch.miniclip.tokenizer import WordTokenizer

    torch.manual_seed(0)
    if tiny:
        words = ["a red circle", "a blue square", "a green triangle", "white chair", "dog on a beach"]
        model = MiniCLIP(PRESETS["tiny"], WordTokenizer.build(words, max_len=8))
    else:
        model = MiniCLIP(with_overrides(PRESETS["default"], concept_weight=TRAINING_CONCEPT_WEIGHT))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model.eval(), path)
    export_model(model, path)
    return path


def search_dim(path: Path) -> int:
    """The search vectors' dimension, from the checkpoint's header (no torch needed)."""
    import json

    from photosearch.miniclip.checkpoint import read_metadata

    config = json.loads(read_metadata(path)["config"])
    return config["embed_dim"] + (384 if config.get("concept_weight", 0) > 0 else 0)  # 384: MiniLM's


def checkpoint_summary(path: Path) -> str:
    """'name (fingerprint f, export e, search_dim D, backbone + text encoder, size px)', from the headers."""
    import json

    from photosearch.indexer.resources import model_fingerprint
    from photosearch.miniclip.checkpoint import read_metadata

    meta = read_metadata(path)
    config = json.loads(meta["config"])
    return (f"{path.name} (fingerprint {meta['fingerprint']}, export {model_fingerprint(path)}, "
            f"search_dim {search_dim(path)}, {config['backbone']} + {config['text_encoder']}, {config['image_size']} px)")


# -- processes ---------------------------------------------------------------------------------
def photosearch_command() -> list[str]:
    script = Path(sys.executable).with_name("photosearch")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from photosearch.cli.main import cli; cli()"]


def process_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PHOTOSEARCH_LIBRARY"}
    env["PHOTOSEARCH_TRUST_INDEX"] = "1"  # synthetic libraries' photos have no files (indexer.live_hits)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_photosearch(args: list, timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
    """(wall seconds, result) of one `photosearch ARGS` process, from spawn to exit."""
    started = time.perf_counter()
    result = subprocess.run([*photosearch_command(), *[str(a) for a in args]], capture_output=True, text=True,
                            timeout=timeout, env=process_env())
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"photosearch {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return seconds, result


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS... of a process in bytes (Linux /proc/PID/status)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key.startswith("Vm") and rest.strip().endswith("kB"):
                    out[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out
