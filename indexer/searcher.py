"""Answering query/similar/status requests over one library.

`Searcher` answers them over an open library (with the model, for queries). The daemon serves
the very same class on its socket, so answers in-process and from the daemon are the same.

`indexer.backend.LibraryBackend`, what the web page and the demo talk to, asks the daemon
first and otherwise answers with a `Searcher` of its own.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from photosearch.indexer import resources  # the helpers service.py shares too (a leaf: no cycle)
from photosearch.indexer.duplicates import find_duplicates
from photosearch.indexer.live_hits import folded_hits
from photosearch.indexer.query_terms import TermError
from photosearch.indexer.query_terms import check as check_terms
from photosearch.indexer.query_terms import describe as describe_terms
from photosearch.indexer.query_vector import encode_terms
from photosearch.indexer.relevance import Calibration, load_calibration
from photosearch.indexer.lock import holder
from photosearch.indexer.resources import DEFAULT_CHECKPOINT, MAX_K, MODEL_META_KEY, Log, ServiceError, quiet
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
        self.calibration = load_calibration(self.checkpoint, self.fingerprint)
        self.daemon_pid = daemon_pid
        self.scanning = scanning or (lambda: None)
        self.source = "daemon" if daemon_pid else "in-process"
        self._model_lock = threading.Lock()
        self.log = log
        notice = resources.unfinished_reindex_message(lib)
        if notice:
            log(f"warning: {notice}")

    def answer(self, request: dict) -> dict:
        op = request.get("op")
        if op == "ping":
            return {"pid": os.getpid(), "library": str(self.folder), "model_fingerprint": self.fingerprint}
        if op == "query":
            terms = request.get("terms") or [{"text": str(request.get("text") or ""), "weight": 1.0}]
            return self.query(terms, _k(request), _filter(request), bool(request.get("allow_mismatch")))
        if op == "similar":
            return self.similar(str(request.get("path") or ""), _k(request), _filter(request),
                                bool(request.get("allow_mismatch")))
        if op == "browse":
            return self.browse(_filter(request), _whole(request, "offset", 0, 10**9), _whole(request, "limit", 50, MAX_K))
        if op == "status":
            return self.status()
        if op == "duplicates":
            return {**find_duplicates(self.lib, near=bool(request.get("near"))), "source": self.source}
        if op == "tags":
            return {"tags": [{"name": n, "photos": c} for n, c in self.lib.tag_counts()], "source": self.source,
                    "notice": resources.model_mismatch(self.lib, self.fingerprint)}
        raise ServiceError(f"unknown request {op!r}: expected ping, query, similar, browse, status, duplicates or tags")

    def query(self, terms: list[dict] | str, k: int, where: SearchFilter | str | None = None,
              allow_mismatch: bool = False) -> dict:
        """The `k` photos `where` lets through that best match `terms` (query_terms; or one text)."""
        if isinstance(terms, str):
            terms = [{"text": terms, "weight": 1.0}]
        for term in terms:
            if isinstance(term, dict) and isinstance(term.get("text"), str):
                term["text"] = term["text"].strip()
        try:
            terms = check_terms(terms)
        except TermError as exc:
            raise ServiceError(str(exc)) from None
        answer = self._search(terms, k, _as_filter(where), allow_mismatch)
        return {"query": describe_terms(terms), "terms": terms, "k": k, **answer}

    def similar(self, path: str, k: int, where: SearchFilter | str | None = None, allow_mismatch: bool = False) -> dict:
        """The `k` photos most like the photo at `path`: indexed (itself left out), or any
        photo file, embedded on the fly and not stored."""
        if not path:
            raise ServiceError("which photo? give its path")
        answer = self._search([{"image": path, "weight": 1.0}], k, _as_filter(where), allow_mismatch, same_as=path)
        return {"photo": path, "k": k, **answer}

    def _search(self, terms: list[dict], k: int, where: SearchFilter, allow_mismatch: bool,
                same_as: str | None = None) -> dict:
        from photosearch.storage import DimensionError

        # The daemon checks what any client sends: text that is not UTF-8 is refused, not replaced.
        terms = [{**term, "text": resources.search_text(term["text"])} if "text" in term else term for term in terms]
        self._check_folder(where)
        mismatch = resources.model_mismatch(self.lib, self.fingerprint)
        calibration = None if mismatch else self.calibration  # fitted for this model, not the library's
        query = encode_terms(terms, self.lib, self._model, calibration, self._vocabulary())
        if mismatch and query.used_model:
            if not allow_mismatch:
                raise ServiceError(mismatch + " (or add --allow-mismatch to search anyway, with meaningless scores)")
            self.log(f"warning: {mismatch}")
        try:
            exclude = query.exclude if same_as else None  # `similar` leaves its photo out; `--like` keeps it
            hits = folded_hits(lambda n: self.lib.search(query.vector, n, where=where, exclude=exclude), k,
                               same_as=same_as if exclude is not None else None)
        except DimensionError:
            self._require_photos()
            raise ServiceError(resources.model_mismatch(self.lib, self.fingerprint) or
                               "the library's vectors do not fit this model: run `photosearch reindex`") from None
        if not hits:
            # Counting photos costs a scan of the table (~0.1 s at a million): only when it can matter.
            self._require_photos()
            self._require_tag(where.tag)
        return {**where.to_request(), **self._results(hits, query, calibration)}

    def browse(self, where: SearchFilter, offset: int, limit: int) -> dict:
        """One page of the library's photos newest first (by taken-at), as the gallery shows them."""
        self._check_folder(where)
        records = self.lib.browse(where, offset, limit + 1)  # one more: is there a next page?
        rows = [{"path": r.path, "taken_at": taken_iso(r), "id": r.id} for r in records[:limit]]
        return {"offset": offset, "limit": limit, "more": len(records) > limit, **where.to_request(),
                "total": self.lib.count_searchable(where), "results": rows}

    def _model(self):
        """The model: the one given, else this checkpoint's, loaded on first need (a photo
        outside the library needs the image tower even for `similar`)."""
        with self._model_lock:
            if self.model is None:
                self.model = resources.load_model(self.checkpoint, image=False)
            return self.model

    def _vocabulary(self) -> frozenset:
        return self.calibration.vocabulary if self.calibration is not None else frozenset()

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
            scan = self.scanning()
            if self.daemon_pid and scan is not None:
                raise ServiceError(f"the daemon is indexing the library's first photos ({scan['done']} of "
                                   f"{scan['total']} done): try again in a moment")
            raise ServiceError(resources.unfinished_reindex_message(self.lib) or resources.empty_library_message(self.folder))

    def _require_tag(self, tag: str | None) -> None:
        from photosearch.storage.tags import matches

        if tag is not None and not any(matches(tag, name) for name, _ in self.lib.tag_counts()):
            raise ServiceError(f"no indexed photo is tagged {tag!r}: `photosearch tags` lists the tags")

    def _results(self, hits, query=None, calibration: Calibration | None = None) -> dict:
        """Rows with one score: the calibrated relevance (0–1) when the model has a calibration,
        else the raw inner product; `no_good_match` when even the best is below the threshold.
        `raw_score` is the inner product before calibration (a query mixing texts and photos:
        with the photos' share on the text scale)."""
        offset, factor = (query.offset, query.raw_factor) if query is not None else (0.0, 1.0)
        tags = self.lib.tags_of([hit.photo.id for hit in hits])  # hits: `FoldedHit`s, copies folded
        rows = []
        for i, hit in enumerate(hits, 1):
            score = hit.score if calibration is None else calibration.relevance(hit.score, offset)
            rows.append({"rank": i, "path": hit.photo.path, "score": round(score, 4),
                         "raw_score": round(hit.score / factor, 4), "taken_at": taken_iso(hit.photo),
                         "tags": [{"name": n, "probability": p} for n, p in tags.get(hit.photo.id, [])],
                         "copies": [copy.path for copy in hit.copies]})
        weak = calibration is not None and (not rows or rows[0]["score"] < calibration.no_match_below)
        return {"source": self.source, "model_fingerprint": self.fingerprint, "calibrated": calibration is not None,
                "no_good_match": weak, "results": rows}


def _filter(request: dict) -> SearchFilter:
    """The request's filter; `under` as the real folder (`--in ~/Pictures`, a link to a root)."""
    try:
        where = SearchFilter.from_request(request)
    except FilterError as exc:
        raise ServiceError(str(exc)) from None
    if where.tag is not None and (len(where.tag) > 200 or not where.tag.isprintable()):
        raise ServiceError("tag must be a tag's name, e.g. \"golden retriever\" (`photosearch tags` lists them)")
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
