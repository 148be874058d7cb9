"""The library service: the one function behind each library command.

`query`, `similar`, `status`, `index` and `reindex` each open what they need (the library
folder, the model), do one job and return a plain dict with stable field names; the daemon
(`indexer.daemon.watch`) is the sixth. `query`, `similar` and `status` first ask the
library's daemon over its socket and only do the work in-process when none runs.

Torch, the model and the storage engine are imported inside the functions that use them:
`photosearch query` answered by a running daemon never imports torch.

Without a daemon, `indexer.searcher.Searcher` answers over the library opened here; the
daemon serves the very same class on its socket, so both answers are the same.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable

from photosearch.indexer import ipc
from photosearch.indexer.lock import LibraryLock

Log = Callable[[str], None]
Progress = Callable[[int, int], None]  # (photos settled, photos seen)
MODEL_META_KEY = "model_fingerprint"  # = indexer.scanner.MODEL_META_KEY (importing it loads torch)
DB_NAME = "library.sqlite"  # = storage.library.DB_NAME
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "default.safetensors"  # = miniclip.checkpoint's
MAX_K = 1000


class ServiceError(Exception):
    """A problem the user can fix; the message says how (the CLI prints it on one line)."""

    user_facing = True


def quiet(message: str) -> None:
    pass


# -- the commands ------------------------------------------------------------------------------
def query(text: str, k: int = 10, under: str | None = None, library_dir: str | None = None,
          checkpoint: str | None = None, log: Log = quiet) -> dict:
    """The `k` photos that best match `text` (only inside folder `under`, if given)."""
    if not text or not text.strip():
        raise ServiceError("the query text is empty: say what to look for, e.g. \"white chair\"")
    request = {"op": "query", "text": text.strip(), "k": k, "under": _absolute(under)}
    return _answer(request, library_dir, checkpoint, log, need_model=True)


def similar(photo: str, k: int = 10, under: str | None = None, library_dir: str | None = None,
            checkpoint: str | None = None, log: Log = quiet) -> dict:
    """The `k` indexed photos most like `photo` (itself excluded); `photo` must be indexed."""
    request = {"op": "similar", "path": _absolute(photo), "k": k, "under": _absolute(under)}
    return _answer(request, library_dir, checkpoint, log, need_model=False)


def status(library_dir: str | None = None, checkpoint: str | None = None, log: Log = quiet) -> dict:
    """Counts by status, failures with reasons, model, library size, and the daemon's pid."""
    return _answer({"op": "status"}, library_dir, checkpoint, log, need_model=False)


def index(paths: list[str], library_dir: str | None = None, checkpoint: str | None = None,
          progress: Progress | None = None) -> dict:
    """Scan `paths` once (they are remembered as the library's roots) and embed what is new."""
    roots = [_absolute(p) for p in paths]
    for root in roots:
        if not os.path.isdir(root):
            raise ServiceError(f"folder not found: {root}")
    folder = library_folder(library_dir)
    with LibraryLock(folder, "index"), opened_model_and_library(folder, checkpoint) as (model, lib):
        ensure_same_model(lib, model.fingerprint)
        for root in roots:
            lib.add_root(root)
        return scan(lib, model, roots, progress)


def reindex(library_dir: str | None = None, checkpoint: str | None = None,
            progress: Progress | None = None) -> dict:
    """Drop every vector and embed every photo of the library's roots again with this model."""
    folder = library_folder(library_dir)
    require_library(folder)
    with LibraryLock(folder, "reindex"), opened_model_and_library(folder, checkpoint) as (model, lib):
        roots = [root.path for root in lib.roots()]
        with lib.transaction():
            lib.clear_vectors()
            lib.set_meta(MODEL_META_KEY, model.fingerprint)
        return scan(lib, model, roots, progress)


# -- helpers the daemon shares -----------------------------------------------------------------
def library_folder(library_dir: str | os.PathLike | None = None) -> Path:
    from photosearch.storage.library_dir import default_library_dir

    return Path(library_dir).expanduser().absolute() if library_dir else default_library_dir()


def require_library(folder: Path) -> None:
    if not (folder / DB_NAME).is_file():
        raise ServiceError(empty_library_message(folder))


def empty_library_message(folder: Path) -> str:
    return (f"the library at {folder} is empty: add photos with `photosearch index PATH` "
            "or keep a folder indexed with `photosearch watch PATH`")


def checkpoint_path(checkpoint: str | os.PathLike | None) -> Path:
    """The given checkpoint, or the shipped one; ServiceError saying what to do if absent."""
    path = Path(checkpoint).expanduser() if checkpoint else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise ServiceError(
            f"no model checkpoint at {path}: train one with `photosearch train --captions-json "
            "FILE --image-root DIR`, or pass --checkpoint FILE")
    return path


def load_model(checkpoint: str | os.PathLike | None, image_tower: bool = True):
    """The checkpoint's model (`image_tower=False`: its text side only), with torch set to one
    intra-op thread for this process.

    A query's text encoding is a few small matrix products that threads do not speed up,
    and on a busy machine an OpenMP team waiting for a descheduled thread turns 8 ms into
    hundreds (benchmarks/README.md). The embedder sets its own thread count while indexing.
    """
    path = checkpoint_path(checkpoint)
    import torch  # only here, as the model

    from photosearch.miniclip.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    model = load_checkpoint(path, image_tower=image_tower)
    model.checkpoint_path = path
    return model


def load_query_model(checkpoint: str | os.PathLike | None):
    """What encodes queries: for MiniLM checkpoints the torch-free `QueryEncoder` (a fresh
    process answers in a fraction of torch's import time), else the torch model's text side."""
    path = checkpoint_path(checkpoint)
    from photosearch.miniclip.query_encoder import load_query_encoder

    return load_query_encoder(path) or load_model(path, image_tower=False)


def query_model_for(model):
    """For a daemon that holds `model` for indexing: the torch-free encoder of the same checkpoint
    for its queries (faster per query), or `model` itself where there is none."""
    from photosearch.miniclip.query_encoder import load_query_encoder

    path = getattr(model, "checkpoint_path", None)
    fast = load_query_encoder(path) if path is not None else None
    return fast if fast is not None and fast.fingerprint == model.fingerprint else model


def checkpoint_fingerprint(path: Path) -> str | None:
    """The fingerprint in a checkpoint's header, read without torch; None if unreadable."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            return (f.metadata() or {}).get("fingerprint")
    except Exception:  # noqa: BLE001 - a missing or broken file simply has no fingerprint
        return None


def model_mismatch(lib, model_fp: str | None) -> str | None:
    """Why the library's vectors do not fit model `model_fp` (None when they do, or none exist)."""
    stored = lib.get_meta(MODEL_META_KEY)
    if not (stored and model_fp and stored != model_fp) or not lib.stats()["vectors"]:
        return None
    return (f"the library was indexed with model {stored} but the checkpoint is {model_fp}: "
            "run `photosearch reindex` to re-embed every photo with it")


def ensure_same_model(lib, model_fp: str) -> None:
    message = model_mismatch(lib, model_fp)
    if message:
        raise ServiceError(message)


@contextlib.contextmanager
def opened_model_and_library(folder: Path, checkpoint):
    """(the model, the library opened for writing), the library closed on exit."""
    model = load_model(checkpoint)
    from photosearch.storage import Library

    lib = Library.open(folder)
    try:
        yield model, lib
    finally:
        lib.close()


def scan(lib, model, roots: list[str], progress: Progress | None = None) -> dict:
    """One reconciliation of `roots` (indexer.scanner), reported as a dict."""
    from photosearch.indexer.embedder import Embedder
    from photosearch.indexer.scanner import Scanner

    started = time.monotonic()
    with Embedder(model) as embedder:
        report = Scanner(lib, embedder, on_progress=progress).scan(roots)
    return report_dict(report, roots, time.monotonic() - started)


def report_dict(report, roots: list[str], seconds: float) -> dict:
    fields = ("added", "updated", "moved", "removed", "unchanged", "failed", "missing")
    return {"roots": roots, **{name: getattr(report, name) for name in fields},
            "failures": [{"path": p, "error": e} for p, e in report.failures],
            "interrupted": report.interrupted, "seconds": round(seconds, 3)}


def _absolute(path: str | os.PathLike | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(os.fspath(path)))


def _answer(request: dict, library_dir, checkpoint, log: Log, need_model: bool) -> dict:
    """The daemon's answer if one runs (with the requested model), else one computed here."""
    folder = library_folder(library_dir)
    try:
        answer = ipc.request(folder, request)
    except ipc.DaemonUnavailable:
        answer = None
    except ipc.RemoteError as exc:
        raise ServiceError(str(exc)) from None
    wanted = checkpoint_fingerprint(checkpoint_path(checkpoint)) if checkpoint else None
    if answer is not None and (wanted is None or wanted == answer.get("model_fingerprint")):
        return answer
    require_library(folder)
    from photosearch.indexer.searcher import Searcher
    from photosearch.storage import Library

    model = load_query_model(checkpoint) if need_model else None
    with Library.open(folder, read_only=True) as lib:
        return Searcher(lib, folder, model=model, checkpoint=checkpoint, log=log).answer(request)


def __getattr__(name: str):
    """`service.Searcher`, where the daemon looks for it; imported on first use because
    `indexer.searcher` builds on this module."""
    if name == "Searcher":
        from photosearch.indexer.searcher import Searcher

        return Searcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
