"""The library service: the one function behind each library command.

`query`, `similar`, `status`, `index` and `reindex` each open what they need (the library
folder, the model), do one job and return a plain dict with stable field names; the daemon
(`indexer.daemon.watch`) is the sixth. `query`, `similar` and `status` first ask the
library's daemon over its socket and only do the work in-process when none runs.

Torch, the model and the storage engine are imported inside the functions that use them:
`photosearch query` answered by a running daemon never imports torch.

`Searcher` answers query/similar/status over an open library. The daemon serves the very
same class on its socket, so answers in-process and from the daemon are the same.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable

from indexer import ipc
from indexer.lock import LibraryLock, holder

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
    from storage.library_dir import default_library_dir

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


def load_model(checkpoint: str | os.PathLike | None):
    path = checkpoint_path(checkpoint)
    from miniclip.checkpoint import load_checkpoint  # torch: only here

    model = load_checkpoint(path)
    model.checkpoint_path = path
    return model


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
    model = load_model(checkpoint)
    from storage import Library

    lib = Library.open(folder)
    try:
        yield model, lib
    finally:
        lib.close()


def scan(lib, model, roots: list[str], progress: Progress | None = None) -> dict:
    """One reconciliation of `roots` (indexer.scanner), reported as a dict."""
    from indexer.embedder import Embedder
    from indexer.scanner import Scanner

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
    from storage import Library

    model = load_model(checkpoint) if need_model else None
    with Library.open(folder, read_only=True) as lib:
        return Searcher(lib, folder, model=model, checkpoint=checkpoint, log=log).answer(request)


# -- answering over an open library -----------------------------------------------------------
class Searcher:
    """Answers query/similar/status requests (dicts, as on the socket) over an open library.

    `model` is needed for queries only. The daemon sets `daemon_pid`, and `scanning`: a
    function giving {"done", "total"} of the scan under way (None when there is none).
    """

    def __init__(self, lib, folder: Path, model=None, checkpoint=None,
                 daemon_pid: int | None = None, scanning=None, log: Log = quiet):
        self.lib = lib
        self.folder = Path(folder)
        self.model = model
        self.checkpoint = getattr(model, "checkpoint_path", None) or (
            Path(checkpoint).expanduser() if checkpoint else DEFAULT_CHECKPOINT)
        self.fingerprint = model.fingerprint if model is not None else checkpoint_fingerprint(self.checkpoint)
        self.daemon_pid = daemon_pid
        self.scanning = scanning or (lambda: None)
        self.source = "daemon" if daemon_pid else "in-process"
        notice = model_mismatch(lib, self.fingerprint)
        if notice:
            log(f"warning: {notice}")

    def answer(self, request: dict) -> dict:
        op = request.get("op")
        if op == "ping":
            return {"pid": os.getpid(), "library": str(self.folder), "model_fingerprint": self.fingerprint}
        if op == "query":
            return self.query(str(request.get("text") or ""), _k(request), request.get("under"))
        if op == "similar":
            return self.similar(str(request.get("path") or ""), _k(request), request.get("under"))
        if op == "status":
            return self.status()
        raise ServiceError(f"unknown request {op!r}: expected ping, query, similar or status")

    def query(self, text: str, k: int, under: str | None) -> dict:
        from storage import DimensionError

        if not text.strip():
            raise ServiceError("the query text is empty")
        self._require_photos()
        vector = self.model.encode_search_texts([text])[0]  # (D,)
        try:
            hits = self.lib.search(vector, k, under=under)
        except DimensionError:
            raise ServiceError(model_mismatch(self.lib, self.fingerprint) or
                               "the library's vectors do not fit this model: run `photosearch reindex`") from None
        return {"query": text, "k": k, "under": under, **self._results(hits)}

    def similar(self, path: str, k: int, under: str | None) -> dict:
        self._require_photos()
        record = self.lib.get_by_path(path)
        if record is None or record.status != "indexed":
            why = "is not in the library" if record is None else f"is {record.status}"
            if record is not None and record.error:
                why += f" ({record.error})"
            raise ServiceError(f"{path} {why}: index its folder first "
                               f"(`photosearch index {os.path.dirname(path) or '.'}`)")
        hits = self.lib.similar(record.id, k, under=under)
        return {"photo": path, "k": k, "under": under, **self._results(hits)}

    def status(self) -> dict:
        stats = self.lib.stats()
        running = holder(self.folder)
        pid = self.daemon_pid or (running[0] if running and running[1] == "watch" else None)
        return {
            "library": {"path": str(self.folder), "bytes": _folder_bytes(self.folder)},
            "photos": {"total": stats["photos"], **stats["by_status"]},
            "failed": [{"path": r.path, "error": r.error} for r in self.lib.photos_by_status("failed")],
            "roots": [{"path": r.path, "present": r.present} for r in self.lib.roots()],
            "model": {"checkpoint": str(self.checkpoint), "fingerprint": self.fingerprint,
                      "library_fingerprint": self.lib.get_meta(MODEL_META_KEY),
                      "mismatch": model_mismatch(self.lib, self.fingerprint) is not None},
            "index": {"vectors": stats["vectors"], "dim": stats["dim"], "type": stats["index_type"]},
            "daemon": {"running": pid is not None, "pid": pid, "scanning": self.scanning()},
            "writer": None if running is None else {"pid": running[0], "command": running[1]},
        }

    def _require_photos(self) -> None:
        if not self.lib.stats()["by_status"]["indexed"]:
            raise ServiceError(empty_library_message(self.folder))

    def _results(self, hits) -> dict:
        rows = [{"rank": i, "path": hit.photo.path, "score": hit.score} for i, hit in enumerate(hits, 1)]
        return {"source": self.source, "model_fingerprint": self.fingerprint, "results": rows}


def _k(request: dict) -> int:
    k = request.get("k", 10)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ServiceError(f"k must be a whole number from 1 to {MAX_K}")
    return k


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
