"""Answering query/similar/status requests over one library.

`Searcher` answers them over an open library (with the model, for queries). The daemon serves
the very same class on its socket, so answers in-process and from the daemon are the same.

`LibraryBackend` is what a long-lived front end (the web page, the demo) talks to: it asks
the library's daemon first, like `indexer.service` does, and otherwise answers with a
`Searcher` of its own over a read-only library and a model loaded once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from photosearch.indexer import ipc
from photosearch.indexer import resources  # the helpers service.py shares too (a leaf: no cycle)
from photosearch.indexer.live_hits import live_hits
from photosearch.indexer.lock import holder
from photosearch.indexer.resources import DEFAULT_CHECKPOINT, MAX_K, MODEL_META_KEY, Log, ServiceError, quiet
from photosearch.indexer.thumbnails import Thumbnails
from photosearch.storage.records import taken_iso
from photosearch.storage.search_filter import FilterError, SearchFilter, absolute_folder


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
        self.fingerprint = model.fingerprint if model is not None else resources.model_fingerprint(self.checkpoint)
        self.daemon_pid = daemon_pid
        self.scanning = scanning or (lambda: None)
        self.source = "daemon" if daemon_pid else "in-process"
        for notice in (resources.model_mismatch(lib, self.fingerprint), resources.unfinished_reindex_message(lib)):
            if notice:
                log(f"warning: {notice}")

    def answer(self, request: dict) -> dict:
        op = request.get("op")
        if op == "ping":
            return {"pid": os.getpid(), "library": str(self.folder), "model_fingerprint": self.fingerprint}
        if op == "query":
            return self.query(str(request.get("text") or ""), _k(request), _filter(request))
        if op == "similar":
            return self.similar(str(request.get("path") or ""), _k(request), _filter(request))
        if op == "browse":
            return self.browse(_filter(request), _whole(request, "offset", 0, 10**9), _whole(request, "limit", 50, MAX_K))
        if op == "status":
            return self.status()
        raise ServiceError(f"unknown request {op!r}: expected ping, query, similar, browse or status")

    def query(self, text: str, k: int, where: SearchFilter | str | None = None) -> dict:
        from photosearch.storage import DimensionError

        where = _as_filter(where)
        if not text.strip():
            raise ServiceError("the query text is empty")
        vector = self.model.encode_search_texts([text])[0]  # (D,)
        try:
            hits = self._hits(lambda n: self.lib.search(vector, n, where=where), k, where)
        except DimensionError:
            self._require_photos()
            raise ServiceError(resources.model_mismatch(self.lib, self.fingerprint) or
                               "the library's vectors do not fit this model: run `photosearch reindex`") from None
        return {"query": text, "k": k, **where.to_request(), **self._results(hits)}

    def similar(self, path: str, k: int, where: SearchFilter | str | None = None) -> dict:
        where = _as_filter(where)
        # Stored by real path: `similar ~/Pictures/a.jpg` finds /data/photos/a.jpg.
        record = self.lib.get_by_path(path) or self.lib.get_by_path(os.path.realpath(path))
        if record is None or record.status != "indexed":
            self._require_photos()  # an empty library says so first
            why = "is not in the library" if record is None else f"is {record.status}"
            if record is not None and record.error:
                why += f" ({record.error})"
            raise ServiceError(f"{path} {why}: index its folder first "
                               f"(`photosearch index {os.path.dirname(path) or '.'}`)")
        hits = self._hits(lambda n: self.lib.similar(record.id, n, where=where), k, where, same_as=path)
        return {"photo": path, "k": k, **where.to_request(), **self._results(hits)}

    def browse(self, where: SearchFilter, offset: int, limit: int) -> dict:
        """One page of the library's photos newest first (by taken-at), as the gallery shows them."""
        self._check_folder(where)
        records = self.lib.browse(where, offset, limit + 1)  # one more: is there a next page?
        rows = [{"path": r.path, "taken_at": taken_iso(r), "id": r.id} for r in records[:limit]]
        return {"offset": offset, "limit": limit, "more": len(records) > limit, **where.to_request(),
                "total": self.lib.count_searchable(where), "results": rows}

    def _hits(self, search, k: int, where: SearchFilter, same_as: str | None = None) -> list:
        self._check_folder(where)
        hits = live_hits(search, k, same_as=same_as)
        if not hits:
            # Counting photos costs a scan of the table (~0.1 s at a million): only when it can matter.
            self._require_photos()
        return hits

    def _check_folder(self, where: SearchFilter) -> None:
        """`--in` a folder that is not there, or holds no indexed photo: say so, not "no results"."""
        if where.folder is None:
            return
        if not os.path.isdir(where.folder):
            raise ServiceError(f"--in {where.folder}: no such folder")
        if not self.lib.count_searchable(SearchFilter(folder=where.folder)):
            self._require_photos()
            roots = ", ".join(root.path for root in self.lib.roots()) or "none"
            raise ServiceError(f"--in {where.folder}: no indexed photo in that folder "
                               f"(the library's folders: {roots}); index it with `photosearch index {where.folder}`")

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
                      "problem": None if self.fingerprint else resources.model_problem(self.checkpoint),
                      "library_fingerprint": self.lib.get_meta(MODEL_META_KEY),
                      "mismatch": resources.model_mismatch(self.lib, self.fingerprint) is not None},
            "index": {"vectors": stats["vectors"], "dim": stats["dim"], "type": stats["index_type"]},
            "daemon": {"running": pid is not None, "pid": pid, "scanning": self.scanning()},
            "notice": resources.unfinished_reindex_message(self.lib),
            "writer": None if running is None else {"pid": running[0], "command": running[1]},
        }

    def _require_photos(self) -> None:
        if not self.lib.stats()["by_status"]["indexed"]:
            raise ServiceError(resources.unfinished_reindex_message(self.lib) or resources.empty_library_message(self.folder))

    def _results(self, hits) -> dict:
        rows = [{"rank": i, "path": hit.photo.path, "score": hit.score, "taken_at": taken_iso(hit.photo)}
                for i, hit in enumerate(hits, 1)]
        return {"source": self.source, "model_fingerprint": self.fingerprint, "results": rows}


def _filter(request: dict) -> SearchFilter:
    """The request's filter; `under` as the real folder (`--in ~/Pictures`, a link to a root)."""
    try:
        where = SearchFilter.from_request(request)
    except FilterError as exc:
        raise ServiceError(str(exc)) from None
    return where.with_folder(absolute_folder(where.folder))


def _as_filter(where: SearchFilter | str | None) -> SearchFilter:
    if isinstance(where, SearchFilter):
        return where
    return SearchFilter(folder=absolute_folder(where))


def _k(request: dict) -> int:
    k = request.get("k", 10)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ServiceError(f"k must be a whole number from 1 to {MAX_K}")
    return k


def _whole(request: dict, name: str, default: int, top: int) -> int:
    value = request.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise ServiceError(f"{name} must be a whole number from 0 to {top}")
    return value


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


# -- for front ends: the daemon first, else a searcher of our own --------------------------------
class HttpError(Exception):
    """A request the page cannot serve, with its HTTP status (e.g. 404 for a photo it may not show)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class LibraryBackend:
    """Answers query/similar/status for one library and finds the photo files it may serve.

    Asks the library's daemon first (as `indexer.service` does); with none, answers with a
    `Searcher` over a read-only library and a model loaded once, reopening the library when
    another process has changed its vectors. Thread-safe.
    """

    def __init__(self, library_dir=None, checkpoint=None, log: Log = quiet):
        self.folder = resources.library_folder(library_dir)
        resources.require_library(self.folder)
        self.checkpoint, self.log = checkpoint, log
        self.wanted = resources.model_fingerprint(resources.checkpoint_path(checkpoint)) if checkpoint else None
        if checkpoint and self.wanted is None:
            resources.load_query_model(checkpoint)  # an unusable model is refused now, with its reason
        self.thumbnails = Thumbnails(self.folder)
        self._lock = threading.RLock()
        self._lib = self._model = self._searcher = None

    def close(self) -> None:
        with self._lock:
            if self._lib is not None:
                self._lib.close()
            self._lib = self._searcher = None

    def warm_up(self) -> str:
        """Load the model now unless the daemon answers; says who will answer searches."""
        if self._from_daemon({"op": "ping"}) is not None:
            return "daemon"
        with self._lock:
            self._searcher_for(need_model=True)
        return "in-process"

    def answer(self, request: dict) -> dict:
        """Like service.query/similar/status for `request` (an ipc request dict)."""
        answer = self._from_daemon(request)
        if answer is not None:
            return answer
        with self._lock:
            return self._searcher_for(request.get("op") == "query").answer(request)

    def with_ids(self, answer: dict) -> dict:
        """`answer` with each result's photo id and the page's URLs for it."""
        rows = []
        with self._lock:
            lib = self._library()
            for hit in answer.get("results", []):
                record = lib.get_by_path(hit["path"])
                if record is not None:  # else removed since the search
                    rows.append({**hit, "id": record.id, "name": os.path.basename(hit["path"]),
                                 "thumb": f"/thumb/{record.id}", "photo": f"/photo/{record.id}"})
        return {**answer, "results": rows}

    def photo(self, photo_id: int):
        """(record, real path) of a photo the page may show; HttpError 404 for any other."""
        with self._lock:
            lib = self._library()
            record = lib.get(photo_id)
            roots = [root.path for root in lib.roots()] if record is not None else []
        if record is None:
            raise HttpError(404, f"no photo {photo_id} in the library")
        real = os.path.realpath(record.path)
        holders = [os.path.realpath(root) for root in roots if _inside(record.path, root)]
        if not any(_inside(real, root) for root in holders):
            raise HttpError(404, f"photo {photo_id} lies outside the library's folders")
        if not os.path.isfile(real):
            raise HttpError(404, f"photo {photo_id} is not on disk ({record.status})")
        return record, real

    def _from_daemon(self, request: dict) -> dict | None:
        try:
            answer = ipc.request(self.folder, request)
        except ipc.DaemonUnavailable:
            return None
        except ipc.RemoteError as exc:
            raise ServiceError(str(exc)) from None
        used = answer.get("model_fingerprint") or (answer.get("model") or {}).get("fingerprint")  # status: nested
        if self.wanted is not None and used != self.wanted:
            return None  # the daemon runs another model than the one asked for
        return answer

    def _library(self):
        if self._lib is None:
            from photosearch.storage import Library

            self._lib = Library.open(self.folder, read_only=True)
        return self._lib

    def _searcher_for(self, need_model: bool):
        from photosearch.storage.meta import GENERATION

        lib = self._library()
        if lib.get_meta(GENERATION, 0) != lib.stats()["generation"]:  # another process wrote vectors
            self.close()
            lib = self._library()
        if need_model and self._model is None:
            self.log(f"loading the model ({resources.checkpoint_path(self.checkpoint)})")
            self._model, self._searcher = resources.load_query_model(self.checkpoint), None
        if self._searcher is None:
            self._searcher = Searcher(lib, self.folder, model=self._model, checkpoint=self.checkpoint, log=self.log)
        return self._searcher


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
