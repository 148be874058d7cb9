"""The library service: the one function behind each library command.

`query`, `similar`, `status`, `index` and `reindex` each open what they need (the library
folder, the model), do one job and return a plain dict with stable field names; the daemon
(`indexer.daemon.watch`) is the sixth. `query`, `similar` and `status` first ask the
library's daemon over its socket and only do the work in-process when none runs.

The model (ONNX Runtime) and the storage engine are imported inside the functions that use
them: `photosearch query` answered by a running daemon loads neither. Torch is never imported
here: the serving path runs the checkpoint's ONNX export (`miniclip.runtime`).

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
from photosearch.indexer.resources import (  # noqa: F401 - the command layer's shared names
    DB_NAME, DEFAULT_CHECKPOINT, MAX_K, MODEL_META_KEY, REINDEX_META_KEY, Log, Progress, ServiceError, checkpoint_path,
    empty_library_message, ensure_same_model, library_folder, load_model, load_query_model,
    model_fingerprint, model_mismatch, quiet, require_library, search_text, secure_library,
)
from photosearch.indexer.searcher import Searcher
from photosearch.indexer.write_faults import PASSING, WriteFault, named_faults, until_written
from photosearch.storage.search_filter import SearchFilter

WRITE_PATIENCE_S = 600.0  # how long `index` and `reindex` wait for a library they cannot write


# -- the commands ------------------------------------------------------------------------------
def query(text: str, k: int = 10, under: str | SearchFilter | None = None, library_dir: str | None = None,
          checkpoint: str | None = None, log: Log = quiet, terms: list[dict] | None = None,
          allow_mismatch: bool = False) -> dict:
    """The `k` photos that best match `text` among those the filter `under` lets through (a
    `SearchFilter`, or just a folder; its `tag`: only photos with that automatic tag);
    byte-identical copies are folded under one result. `terms`: more weighted terms (indexer.query_terms), texts
    or photos; `text` may then be empty. A library indexed with another model is refused
    unless `allow_mismatch`."""
    text = search_text(text) if text and text.strip() else ""
    terms = ([{"text": text, "weight": 1.0}] if text else []) + list(terms or [])
    if not terms:
        raise ServiceError("the query text is empty: say what to look for, e.g. \"white chair\"")
    request = {"op": "query", "text": text, "terms": terms, "k": k, **_filter_fields(under),
               "allow_mismatch": allow_mismatch}
    return _answer(request, library_dir, checkpoint, log, need_model=True)


def similar(photo: str, k: int = 10, under: str | SearchFilter | None = None, library_dir: str | None = None,
            checkpoint: str | None = None, log: Log = quiet, allow_mismatch: bool = False) -> dict:
    """The `k` photos most like `photo`, among those `under` lets through: an indexed photo
    (itself left out), or any photo file, embedded on the fly and not stored."""
    request = {"op": "similar", "path": _absolute(photo), "k": k, **_filter_fields(under),
               "allow_mismatch": allow_mismatch}
    return _answer(request, library_dir, checkpoint, log, need_model=False)


def duplicates(near: bool = False, library_dir: str | None = None, checkpoint: str | None = None,
               log: Log = quiet) -> dict:
    """Groups of byte-identical copies, and with `near` of near-identical photos
    (`indexer.duplicates.find_duplicates`)."""
    return _answer({"op": "duplicates", "near": near}, library_dir, checkpoint, log, need_model=False)


def tags(library_dir: str | None = None, checkpoint: str | None = None, log: Log = quiet) -> dict:
    """{"tags": [{"name", "photos"}], most common first}: the automatic tags and their counts."""
    return _answer({"op": "tags"}, library_dir, checkpoint, log, need_model=False)


def status(library_dir: str | None = None, checkpoint: str | None = None, log: Log = quiet) -> dict:
    """Counts by status, failures with reasons, model, library size, and the daemon's pid."""
    return _answer({"op": "status"}, library_dir, checkpoint, log, need_model=False)


def index(paths: list[str], library_dir: str | None = None, checkpoint: str | None = None,
          progress: Progress | None = None, log: Log = quiet, ray: str | None = None,
          actors: int | None = None) -> dict:
    """Scan `paths` once (they are remembered as the library's roots) and embed what is new.

    A library another program keeps locked (or a disk I/O error) is waited out for up to
    `WRITE_PATIENCE_S`, said once through `log`; a full disk ends it at once with
    `WriteFault` counting the photos not stored.

    `ray`: embed on the Ray cluster at this address (`auto`: the one on this machine, else a
    new local one) with `actors` embedding actors (default: one per CPU of the cluster);
    the report then also has `shards` (the run's vector shard folder) and `ray_duplicates`."""
    roots = [_absolute(p) for p in paths]
    for root in roots:
        if not os.path.isdir(root):
            raise ServiceError(f"folder not found: {root}")
    folder = library_folder(library_dir)
    secure_library(folder, log, create=True)
    if ray is not None:
        return _index_on_ray(roots, folder, checkpoint, progress, ray, actors)
    with LibraryLock(folder, "index"), named_faults(folder), \
            opened_model_and_library(folder, checkpoint) as (model, lib):
        def roots_to_scan() -> list[str]:
            ensure_same_model(lib, model.fingerprint)
            # Registered by real path, and never overlapping: `index ~/Pictures` where that is a
            # link to the root /data/photos scans (and reports) /data/photos.
            return list(dict.fromkeys(lib.add_root(root).path for root in roots))

        return scan(lib, model, roots_to_scan, progress, log)


def reindex(library_dir: str | None = None, checkpoint: str | None = None,
            progress: Progress | None = None, log: Log = quiet) -> dict:
    """Drop every vector and embed every photo of the library's roots again with this model.

    A reindex that stopped (Ctrl-C, a crash) is remembered: the next `reindex` with the same model
    embeds only what is left, and `query`/`status` say how to finish it meanwhile."""
    folder = library_folder(library_dir)
    require_library(folder)
    secure_library(folder, log)
    with LibraryLock(folder, "reindex"), named_faults(folder), \
            opened_model_and_library(folder, checkpoint) as (model, lib):
        roots = [root.path for root in lib.roots()]
        if lib.get_meta(REINDEX_META_KEY) != model.fingerprint:  # else: finish the one that stopped
            with lib.transaction():
                lib.clear_vectors()
                lib.set_meta(MODEL_META_KEY, model.fingerprint)
                lib.set_meta(REINDEX_META_KEY, model.fingerprint)
        report = scan(lib, model, roots, progress, log)
        if not report["interrupted"]:
            lib.set_meta(REINDEX_META_KEY, None)
        return report


def _index_on_ray(roots: list[str], folder: Path, checkpoint, progress, address: str, actors: int | None) -> dict:
    from photosearch.indexer.ray_embed import RayUnavailable, import_ray

    model = load_model(checkpoint, image=False)  # header and manifest: the actors load the towers
    try:
        import_ray()  # said at once, not after the walk; the cluster is joined when there is work
    except RayUnavailable as exc:
        raise ServiceError(str(exc)) from None
    from photosearch.indexer.ray_scan import RayModel, scan_on_ray
    from photosearch.storage import Library

    started = time.monotonic()
    cluster_model = RayModel(checkpoint_path(checkpoint), model.fingerprint, address, actors)
    with LibraryLock(folder, "index"), Library.open(folder) as lib:
        ensure_same_model(lib, model.fingerprint)
        covering = list(dict.fromkeys(lib.add_root(root).path for root in roots))
        try:
            report, scanner = scan_on_ray(lib, cluster_model, covering, progress)
        except RayUnavailable as exc:
            raise ServiceError(str(exc)) from None
    answer = report_dict(report, covering, time.monotonic() - started)
    answer.update(shards=str(scanner.shard_folder) if scanner.shard_folder else None,
                  ray_duplicates=scanner.duplicates, actors=cluster_model.actors)
    return answer


# -- helpers the daemon shares -----------------------------------------------------------------
@contextlib.contextmanager
def opened_model_and_library(folder: Path, checkpoint):
    """(the model, the library opened for writing), the library closed on exit."""
    model = load_model(checkpoint)
    from photosearch.storage import Library, StorageError

    lib = Library.open(folder)
    try:
        yield model, lib
    except BaseException:
        with contextlib.suppress(StorageError):  # the error in hand is the one to tell
            lib.close()
        raise
    lib.close()


def scan(lib, model, roots: list[str] | Callable[[], list[str]], progress: Progress | None = None,
         log: Log = quiet) -> dict:
    """One reconciliation of `roots` (indexer.scanner), reported as a dict; a passing write
    fault (another program's lock, an I/O error) is waited out for `WRITE_PATIENCE_S`.

    `roots` may be a function that registers them first: it is called again on each try."""
    from photosearch.indexer.embedder import Embedder
    from photosearch.indexer.scanner import Scanner

    started = time.monotonic()

    def keep_trying(fault: WriteFault) -> bool:
        return fault.fault in PASSING and time.monotonic() - started < WRITE_PATIENCE_S

    with Embedder(model) as embedder:
        scanner = Scanner(lib, embedder, on_progress=progress)
        scanned: list[str] = []

        def attempt():
            with named_faults(lib.folder):
                scanned[:] = roots() if callable(roots) else roots
            return scanner.scan(scanned)

        report = until_written(attempt, log, keep_trying, sleep=lambda seconds: time.sleep(seconds) or False)
    return report_dict(report, scanned, time.monotonic() - started)


def report_dict(report, roots: list[str], seconds: float) -> dict:
    fields = ("added", "updated", "moved", "removed", "unchanged", "failed", "missing")
    return {"roots": roots, **{name: getattr(report, name) for name in fields},
            "failures": [{"path": p, "error": e} for p, e in report.failures],
            "interrupted": report.interrupted, "seconds": round(seconds, 3)}


def _filter_fields(where: str | SearchFilter | None) -> dict:
    """A filter's request fields, its folder made absolute (the searcher resolves links)."""
    where = where if isinstance(where, SearchFilter) else SearchFilter(folder=where)
    return where.with_folder(_absolute(where.folder)).to_request()


def _absolute(path: str | os.PathLike | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(os.fspath(path)))


def _answer(request: dict, library_dir, checkpoint, log: Log, need_model: bool) -> dict:
    """The daemon's answer if one runs (with the requested model), else one computed here.

    A daemon that holds the library but does not answer yet is starting (loading its model,
    opening the library): `status` says so; a search is answered here when the library
    already holds photos, else waits for the daemon (at most DAEMON_START_WAIT_S)."""
    folder = library_folder(library_dir)
    secure_library(folder, log)  # before trusting its socket
    answer = _ask_daemon(folder, request)
    wanted = model_fingerprint(checkpoint_path(checkpoint)) if checkpoint else None
    if checkpoint and need_model and wanted is None:
        answer = None  # the asked-for model cannot be used: loading it below says why, in one line
    if answer is None and _daemon_starting(folder):
        if request["op"] == "status":
            return _starting_status(folder, checkpoint, log)
        if not _has_photos(folder):
            log("the daemon is starting: waiting for it to answer")
            answer = _wait_for_daemon(folder, request)
    if answer is not None and (wanted is None or wanted == answer.get("model_fingerprint")):
        return answer
    require_library(folder)
    model = load_query_model(checkpoint) if need_model else None
    if request["op"] == "query" and all(term.get("text") for term in request.get("terms") or ()):
        from photosearch.storage.reader import LibraryReader, ReaderUnavailable

        # The common case without SQLAlchemy (its import is half a cold query); anything the
        # light reader cannot serve is answered, and explained, by the full library below.
        try:
            with LibraryReader.open(folder) as reader:
                return Searcher(reader, folder, model=model, checkpoint=checkpoint, log=log).answer(request)
        except ReaderUnavailable:
            pass
    from photosearch.storage import Library

    with Library.open(folder, read_only=True) as lib:
        if lib.index_warning:  # the file is behind the database: served, not rebuilt here
            log(f"warning: {lib.index_warning}")
        return Searcher(lib, folder, model=model, checkpoint=checkpoint, log=log).answer(request)


DAEMON_START_WAIT_S = 30.0  # how long a search waits for a starting daemon (its model load: seconds)


def _ask_daemon(folder: Path, request: dict) -> dict | None:
    try:
        # Near-duplicates read every vector: 16 s of CPU at 100k photos (benchmarks/README.md).
        return ipc.request(folder, request, timeout=600.0 if request["op"] == "duplicates" else 60.0)
    except ipc.DaemonUnavailable:
        return None
    except ipc.RemoteError as exc:
        raise ServiceError(str(exc)) from None


def _daemon_starting(folder: Path) -> bool:
    """A `watch` holds the library's lock but its socket does not answer (yet)."""
    from photosearch.indexer.lock import holder

    running = holder(folder)
    return running is not None and running[1] == "watch"


def _has_photos(folder: Path) -> bool:
    """Whether the library's database exists and holds a searchable photo (a cheap look)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True, timeout=1)) as db:
            return db.execute("SELECT 1 FROM photos WHERE status = 'indexed' LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return False


def _wait_for_daemon(folder: Path, request: dict) -> dict | None:
    deadline = time.monotonic() + DAEMON_START_WAIT_S
    while time.monotonic() < deadline and _daemon_starting(folder):
        answer = _ask_daemon(folder, request)
        if answer is not None:
            return answer
        time.sleep(0.2)
    if _daemon_starting(folder):
        raise ServiceError(f"the daemon watching this library has not answered in {DAEMON_START_WAIT_S:.0f} s "
                           "since it started: try again in a moment (`photosearch status` shows what it does)")
    return None


def _starting_status(folder: Path, checkpoint, log: Log) -> dict:
    """`status` while the daemon starts: what the library holds, and daemon.starting."""
    from photosearch.indexer.lock import holder

    pid = (holder(folder) or (0, ""))[0]
    if _has_photos(folder) or (folder / DB_NAME).is_file():
        from photosearch.storage import Library, StorageError

        try:
            with Library.open(folder, read_only=True) as lib:
                report = Searcher(lib, folder, checkpoint=checkpoint, log=log).status()
        except StorageError:  # being created or upgraded by the daemon right now
            report = None
        if report is not None:
            report["daemon"] = {**report["daemon"], "running": True, "pid": pid, "starting": True}
            return report
    empty = {"total": 0, "indexed": 0, "pending": 0, "failed": 0, "missing": 0}
    return {"library": {"path": str(folder), "bytes": 0}, "photos": empty, "failed": [], "roots": [],
            "model": {"checkpoint": str(checkpoint_path(checkpoint)), "fingerprint": None, "problem": None,
                      "library_fingerprint": None, "mismatch": False},
            "index": {"vectors": 0, "dim": None, "type": None},
            "daemon": {"running": True, "pid": pid, "scanning": None, "starting": True},
            "writer": {"pid": pid, "command": "watch"}, "notice": None}
