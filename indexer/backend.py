"""`LibraryBackend`: what a long-lived front end (the web page, the demo) talks to.

It asks the library's daemon first, like `indexer.service` does, and otherwise answers with a
`Searcher` of its own over a read-only library and a model loaded once.
"""

from __future__ import annotations

import os
import threading

from photosearch.indexer import ipc, resources
from photosearch.indexer.resources import Log, ServiceError, quiet
from photosearch.indexer.searcher import Searcher


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
        resources.secure_library(self.folder, log)
        self.checkpoint, self.log = checkpoint, log
        self.wanted = resources.model_fingerprint(resources.checkpoint_path(checkpoint)) if checkpoint else None
        if checkpoint and self.wanted is None:
            resources.load_query_model(checkpoint)  # an unusable model is refused now, with its reason
        from photosearch.indexer.thumbnails import Thumbnails  # Pillow and HEIF: front ends only

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

    def embed_upload(self, data: bytes, name: str = "upload") -> list[float]:
        """The search vector (D floats) of a photo uploaded to the page: decoded in memory with
        bounds (query_vector.MAX_QUERY_PIXELS), embedded, and nothing kept. ServiceError if unreadable."""
        from photosearch.indexer.images import PhotoDecodeError, load_photo_bytes
        from photosearch.indexer.query_vector import MAX_QUERY_PIXELS, embed_image

        try:
            photo = load_photo_bytes(data, name, max_pixels=MAX_QUERY_PIXELS)
        except PhotoDecodeError as exc:
            raise ServiceError(f"the chosen file cannot be read as a photo: {exc.reason}") from None
        with self._lock:
            if self._model is None:
                self.log(f"loading the model ({resources.checkpoint_path(self.checkpoint)})")
                self._model, self._searcher = resources.load_query_model(self.checkpoint), None
            model = self._model
        return embed_image(photo.image, model).tolist()

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
        """(record, real path) of a photo the page may show: indexed, and inside its root;
        HttpError 404 for any other."""
        with self._lock:
            lib = self._library()
            record = lib.get(photo_id)
            roots = [root.path for root in lib.roots()] if record is not None else []
        if record is None:
            raise HttpError(404, f"no photo {photo_id} in the library")
        if record.status != "indexed":  # failed, missing, pending: nothing the page lists
            raise HttpError(404, f"photo {photo_id} is not indexed ({record.status})")
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
            if self._lib.index_warning:  # the file is behind the database: served, not rebuilt here
                self.log(f"warning: {self._lib.index_warning}")
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
