"""`photosearch serve`: a local web page over one library (standard library `http.server`).

    GET /                         the page (indexer/web_assets: index.html, app.js, app.css)
    GET /api/search?q=TEXT&k=N    {"query", "k", "source", "model_fingerprint", "results": [...]}
    GET /api/similar?id=ID&k=N    {"photo": {"id", "path", "name"}, "k", "source", ..., "results"}
        both also take the filter: under=FOLDER, from=DATE, to=DATE, tag=NAME (storage.search_filter)
    GET /api/browse?offset=&k=    the library's photos newest first (by taken-at), one page, "more"
    POST /api/similar-upload      a photo's bytes as the body: the photos most like it (nothing kept)
    GET /api/status               service.status's dict
    search and similar take offset=N (one page after another: "more" says whether one follows);
    q is the search box's syntax: `beach + dog:0.5 - night` (indexer.query_terms)
    GET /thumb/ID, /photo/ID      a photo's thumbnail (JPEG) or the photo itself

Each result is {"rank", "id", "path", "name", "score", "thumb", "photo"}. Names that are not
valid UTF-8 show U+FFFD in "path"/"name" and come exact in "path_bytes"/"name_bytes" (base64;
see indexer/path_json.py). Errors are
{"error": "one line"} with status 400 (bad request, or a library problem the message
explains), 403 (foreign Host header), 404 or 500 (a bug; logged).

Files are addressed by photo id, looked up in the library, never by a path from the request:
a photo is served only while its real path (symlinks resolved) lies inside the watched root
that holds it. Requests whose Host is not a loopback name are refused while the server
listens on loopback (DNS rebinding). Searches go to the library's daemon when one answers,
else to one model `LibraryBackend` keeps loaded in this process.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import threading
import unicodedata
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from photosearch.indexer import service
from photosearch.indexer.daemon import _stop_on_signals  # SIGINT/SIGTERM set an Event, as in the daemon
from photosearch.indexer.images import PhotoDecodeError
from photosearch.indexer.path_json import to_json
from photosearch.indexer.query_terms import TermError, parse_expression
from photosearch.indexer.backend import HttpError, LibraryBackend
from photosearch.indexer.thumbnails import jpeg_preview
from photosearch.storage.search_filter import FilterError, SearchFilter

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
DEFAULT_K, MAX_K = 24, 100  # results per page
MAX_QUERY_CHARS = 300  # longer search text is refused (400)
MAX_UPLOAD_BYTES = 20 << 20  # a photo chosen from the computer as a query: at most this big
PREVIEW_SIZE = 2048  # photos browsers cannot show (TIFF, HEIC) are sent as JPEGs this big
ASSETS = Path(__file__).resolve().parent / "web_assets"
PAGES = {"/": ("index.html", "text/html"), "/index.html": ("index.html", "text/html"),
         "/app.js": ("app.js", "text/javascript"), "/app.css": ("app.css", "text/css"),
         "/favicon.ico": ("favicon.svg", "image/svg+xml")}
BROWSER_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
                 ".webp": "image/webp", ".bmp": "image/bmp"}
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
PAGE_POLICY = ("default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")
SAFETY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
_FILE_ROUTE = re.compile(r"^/(thumb|photo)/([0-9]{1,18})$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NUMBER = re.compile(r"^[0-9]{1,18}$")

Reply = tuple  # (status, content type or None, body bytes, extra headers)


# -- HTTP --------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "photosearch"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(self._route)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(self._post)

    def _post(self) -> Reply:
        self._host_check()
        url = urlsplit(self.path)
        if url.path != "/api/similar-upload":
            raise HttpError(404, "not found")
        return _json(200, self._upload(_params(url.query)))

    def _answer(self, route) -> None:
        try:
            reply = route()
        except HttpError as exc:
            reply = _json(exc.status, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one request's failure must not stop the server
            if getattr(exc, "user_facing", False):
                reply = _json(400, {"error": " ".join(str(exc).split())})
            else:
                self.server.log(f"error serving {self.path[:200]!r}: {type(exc).__name__}: {exc}")
                reply = _json(500, {"error": "internal error (see the server's log)"})
        try:
            self._send(*reply)
        except OSError:
            pass  # the browser went away (a lazy thumbnail scrolled off, a closed tab)

    def _route(self) -> Reply:
        self._host_check()
        url = urlsplit(self.path)
        if url.path in PAGES:
            name, kind = PAGES[url.path]
            return 200, kind + "; charset=utf-8", (ASSETS / name).read_bytes(), {"Content-Security-Policy": PAGE_POLICY}
        route = _FILE_ROUTE.match(url.path)  # the raw path: nothing percent-encoded can match
        if route:
            return self._photo(route.group(1), int(route.group(2)))
        api = {"/api/search": self._search, "/api/similar": self._similar, "/api/status": self._status,
               "/api/browse": self._browse}
        if url.path not in api:
            raise HttpError(404, "not found")
        return _json(200, api[url.path](_params(url.query)))

    def _search(self, params: dict) -> dict:
        try:
            terms = parse_expression(_query_text(params))
        except TermError as exc:
            raise HttpError(400, str(exc)) from None
        return self._page({"op": "query", "terms": terms, **_filter(params)}, params)

    def _similar(self, params: dict) -> dict:
        record, _ = self.server.backend.photo(_number(params, "id"))
        answer = self._page({"op": "similar", "path": record.path, **_filter(params)}, params)
        return {**answer, "photo": {"id": record.id, "path": record.path, "name": os.path.basename(record.path)}}

    def _browse(self, params: dict) -> dict:
        request = {"op": "browse", "offset": _offset(params), "limit": _k(params), **_filter(params)}
        return self.server.backend.with_ids(self.server.backend.answer(request))

    def _upload(self, params: dict) -> dict:
        """POST a photo file's bytes: the photos most like it (it is embedded and forgotten)."""
        size = int(self.headers.get("Content-Length") or 0)
        if not 0 < size <= MAX_UPLOAD_BYTES:
            raise HttpError(413 if size else 400, f"send one photo of at most {MAX_UPLOAD_BYTES >> 20} MB")
        data = self.rfile.read(size)
        vector = self.server.backend.embed_upload(data, "the chosen file")
        return self._page({"op": "query", "terms": [{"vector": vector, "weight": 1.0}], **_filter(params)}, params)

    def _page(self, request: dict, params: dict) -> dict:
        """One page (offset, k) of a search's results, and whether more follow."""
        offset, k = _offset(params), _k(params)
        wanted = min(offset + k, service.MAX_K)
        answer = self.server.backend.with_ids(self.server.backend.answer({**request, "k": wanted}))
        rows = answer["results"]
        more = len(rows) >= wanted and wanted < service.MAX_K
        return {**answer, "k": k, "offset": offset, "more": more, "results": rows[offset:offset + k]}

    def _status(self, params: dict) -> dict:
        return self.server.backend.answer({"op": "status"})

    def _photo(self, kind: str, photo_id: int) -> Reply:
        backend = self.server.backend
        record, real = backend.photo(photo_id)
        headers = {"ETag": f'"{kind}-{backend.thumbnails.path_for(photo_id, record.fingerprint).stem}"'}
        if self.headers.get("If-None-Match") == headers["ETag"]:
            return 304, None, b"", headers
        try:
            if kind == "thumb":
                return 200, "image/jpeg", backend.thumbnails.jpeg(photo_id, record.fingerprint, real), headers
            browser_type = BROWSER_TYPES.get(os.path.splitext(real)[1].lower())
            if browser_type is None:  # TIFF, HEIC...: a large JPEG instead
                return 200, "image/jpeg", jpeg_preview(real, PREVIEW_SIZE), headers
            with os.fdopen(os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as fh:
                return 200, browser_type, fh.read(), headers
        except (PhotoDecodeError, OSError) as exc:
            raise HttpError(404, f"photo {photo_id} cannot be read: {getattr(exc, 'reason', None) or exc}") from None

    def _host_check(self) -> None:
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.split("]", 1)[0] + "]" if host.startswith("[") else host.split(":", 1)[0]
        if self.server.loopback and host and name not in LOOPBACK_NAMES:
            raise HttpError(403, "this server answers only to http://127.0.0.1 or http://localhost")

    def _send(self, status: int, content_type: str | None, data: bytes, headers: dict) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in {**SAFETY_HEADERS, **headers, "Content-Length": str(len(data))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        pass  # no access log; errors are logged in do_GET


def _json(status: int, body: dict) -> Reply:
    return status, "application/json; charset=utf-8", json.dumps(to_json(body)).encode(), {}


def _params(query: str) -> dict[str, str]:
    if _BAD_PERCENT.search(query):
        raise HttpError(400, "invalid percent-encoding in the query string")
    try:
        return dict(parse_qsl(query, keep_blank_values=True, errors="strict", max_num_fields=12))
    except ValueError:  # bad UTF-8 (UnicodeDecodeError) or too many fields
        raise HttpError(400, "unreadable query string (expected UTF-8 q=...&k=...)") from None


def _query_text(params: dict) -> str:
    text = re.sub(r"[\t\n\r]+", " ", params.get("q", "")).strip()
    if not text:
        raise HttpError(400, 'the query is empty: say what to look for, e.g. "white chair"')
    if len(text) > MAX_QUERY_CHARS:
        raise HttpError(400, f"the query is too long (at most {MAX_QUERY_CHARS} characters)")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise HttpError(400, "the query contains control characters")
    return text


def _filter(params: dict) -> dict:
    """The request's filter fields (`under`, `from`, `to`, `tag`), checked: 400 if unreadable."""
    try:
        where = SearchFilter.from_request({key: params.get(key) or None for key in ("under", "from", "to", "tag")})
    except FilterError as exc:
        raise HttpError(400, str(exc).replace("--from", "from").replace("--to", "to")) from None
    return where.to_request()


def _k(params: dict) -> int:
    return _number(params, "k", str(DEFAULT_K), MAX_K)


def _offset(params: dict) -> int:
    raw = params.get("offset") or "0"
    if not _NUMBER.match(raw) or int(raw) >= service.MAX_K * 1000:
        raise HttpError(400, "offset must be a whole number from 0")
    return int(raw)


def _number(params: dict, name: str, default: str | None = None, top: int = 10**18 - 1) -> int:
    raw = params.get(name, default) or ""
    if not _NUMBER.match(raw) or not 1 <= int(raw) <= top:
        raise HttpError(400, f"{name} must be a whole number from 1 to {top}")
    return int(raw)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, backend: LibraryBackend, log: service.Log):
        self.backend, self.log = backend, log
        self.loopback = address[0] in LOOPBACK_NAMES or address[0].startswith("127.")
        super().__init__(address, _Handler)


def make_server(backend: LibraryBackend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                log: service.Log = service.quiet) -> _Server:
    """A bound, not yet serving, server (port 0: any free port; see `url`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("Server", (_Server,), {"address_family": family})
    try:
        return server_class((host, port), backend, log)
    except OSError as exc:
        raise service.ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                   "pick another port with --port") from None


def url(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def serve(library_dir=None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, checkpoint=None,
          log: service.Log = service.quiet, on_ready=None, stop: threading.Event | None = None) -> None:
    """Serve the page until Ctrl-C/SIGTERM (or `stop` is set); `on_ready(url)` once listening."""
    stop = stop or threading.Event()
    backend = LibraryBackend(library_dir, checkpoint, log)
    try:
        server = make_server(backend, host, port, log)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="web-server")
        try:
            if not server.loopback:
                log(f"warning: listening on {host}: anyone who can reach this machine can see your photos")
            log(f"searches are answered {'by the daemon' if backend.warm_up() == 'daemon' else 'in this process'}")
            thread.start()
            with _stop_on_signals(stop):
                (on_ready or log)(url(server))
                while not stop.wait(0.5):
                    pass
        finally:
            if thread.is_alive():
                server.shutdown()
                thread.join()
            server.server_close()
    finally:
        backend.close()
