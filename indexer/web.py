"""`photosearch serve`: a local web page over one library (standard library `http.server`).

    GET /                         the page (indexer/web_assets: index.html, app.js, app.css)
    GET /api/search?q=TEXT&k=N    {"query", "k", "source", "model_fingerprint", "results": [...]}
    GET /api/similar?id=ID&k=N    {"photo": {"id", "path", "name"}, "k", "source", ..., "results"}
        both also take the filter: under=FOLDER, from=DATE, to=DATE, tag=NAME (storage.search_filter)
    GET /api/browse?offset=&k=    the library's photos newest first (by taken-at), one page, "more"
    POST /api/similar-upload      a photo's bytes as the body: the photos most like it (nothing kept)
    GET /api/status               service.status's dict
    GET /api/duplicates[?near=1]  service.duplicates's dict, each photo with its "id" and "thumb"
    GET /api/tags                 {"tags": [{"name", "photos"}], ...}: the automatic tags, most common first
    search and similar take offset=N (one page after another: "more" says whether one follows);
    q is the search box's syntax: `beach + dog:0.5 - night` (indexer.query_terms)
    GET /thumb/ID, /photo/ID      a photo's thumbnail (JPEG) or the photo itself

Each result is {"rank", "id", "path", "name", "score", "thumb", "photo", "tags": [{"name",
"probability"}], "copies": [paths of byte-identical copies folded under it]}. Names that are not
valid UTF-8 show U+FFFD in "path"/"name" and come exact in "path_bytes"/"name_bytes" (base64;
see indexer/path_json.py). Errors are
{"error": "one line"} with status 400 (bad request, or a library problem the message
explains), 403 (foreign Host header), 404 or 500 (a bug; logged).

Every request must carry this run's token (the printed URL's `?token=`, traded on the first
visit for an HttpOnly SameSite=Strict cookie) and name the server by an allowed Host, on any
bind (indexer/web_access.py): a page on loopback is no way around file permissions for other
accounts, nor a way in for other web sites (DNS rebinding).

Files are addressed by photo id, looked up in the library, never by a path from the request:
a photo is served only while it is indexed and its real path (symlinks resolved) lies inside
the watched root that holds it, and it is streamed from the file, never read whole. Idle
connections are dropped after IDLE_TIMEOUT_S; the listening queue is the system's largest
(a burst of requests waits, it is not reset). Searches go to the library's daemon when one
answers, else to one model `LibraryBackend` keeps loaded in this process.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from photosearch.indexer import service
from photosearch.indexer.daemon import _stop_on_signals  # SIGINT/SIGTERM set an Event, as in the daemon
from photosearch.indexer.images import PhotoDecodeError
from photosearch.indexer.path_json import to_json
from photosearch.indexer.query_terms import TermError, parse_expression
from photosearch.indexer.backend import HttpError, LibraryBackend
from photosearch.indexer.thumbnails import jpeg_preview
from photosearch.indexer.web_access import TOKEN_PARAM, Access, AccessDenied, is_loopback
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
IDLE_TIMEOUT_S = 30  # a connection that sends nothing for this long is closed
PAGE_POLICY = ("default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")
SAFETY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
_FILE_ROUTE = re.compile(r"^/(thumb|photo)/([0-9]{1,18})$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NUMBER = re.compile(r"^[0-9]{1,18}$")
_TOKEN = re.compile(r"(?:^|&)" + TOKEN_PARAM + r"=([A-Za-z0-9_-]{1,100})(?:&|$)")

Reply = tuple  # (status, content type or None, body bytes or an open file, extra headers)


# -- HTTP --------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "photosearch"
    server: _Server
    timeout = IDLE_TIMEOUT_S  # socket timeout: a silent or stalled client is dropped
    extra_headers: dict = {}  # the cookie, on a request that brought the token in its URL

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(self._route)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(self._post)

    def _post(self) -> Reply:
        self._check_access()
        url = urlsplit(self.path)
        if url.path != "/api/similar-upload":
            raise HttpError(404, "not found")
        return _json(200, self._upload(_params(url.query)))

    def _answer(self, route) -> None:
        try:
            reply = route()
        except (HttpError, AccessDenied) as exc:
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
        finally:
            if hasattr(reply[2], "close"):
                reply[2].close()

    def _check_access(self) -> bool:
        """AccessDenied unless the Host is allowed and the request has this run's token (cookie
        or query string); True when it came in the query string (then set the cookie)."""
        access = self.server.access
        access.check_host(self.headers.get("Host"))
        token = _TOKEN.search(urlsplit(self.path).query)
        return access.check_token(self.headers.get("Cookie"), token.group(1) if token else None)

    def _route(self) -> Reply:
        access = self.server.access
        url = urlsplit(self.path)
        if self._check_access():
            if url.path in PAGES:  # the printed link: trade the token for the cookie, then drop it
                return 303, None, b"", {"Set-Cookie": access.set_cookie(), "Location": url.path}
            self.extra_headers = {"Set-Cookie": access.set_cookie()}
        if url.path in PAGES:
            name, kind = PAGES[url.path]
            return 200, kind + "; charset=utf-8", (ASSETS / name).read_bytes(), {"Content-Security-Policy": PAGE_POLICY}
        route = _FILE_ROUTE.match(url.path)  # the raw path: nothing percent-encoded can match
        if route:
            return self._photo(route.group(1), int(route.group(2)))
        api = {"/api/search": self._search, "/api/similar": self._similar, "/api/status": self._status,
               "/api/browse": self._browse, "/api/duplicates": self._duplicates, "/api/tags": self._tags}
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

    def _duplicates(self, params: dict) -> dict:
        near = params.get("near", "0")
        if near not in ("0", "1", ""):
            raise HttpError(400, "near must be 0 or 1")
        answer = self.server.backend.answer({"op": "duplicates", "near": near == "1"})
        return {**answer, "groups": [{**group, "photos": self.server.backend.with_ids({"results": group["photos"]})["results"]}
                                     for group in answer["groups"]]}

    def _tags(self, params: dict) -> dict:
        return self.server.backend.answer({"op": "tags"})

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
            return 200, browser_type, os.fdopen(os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb"), headers
        except (PhotoDecodeError, OSError) as exc:
            raise HttpError(404, f"photo {photo_id} cannot be read: {getattr(exc, 'reason', None) or exc}") from None

    def _send(self, status: int, content_type: str | None, data, headers: dict) -> None:
        size = len(data) if isinstance(data, bytes) else os.fstat(data.fileno()).st_size
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in {**SAFETY_HEADERS, **self.extra_headers, **headers, "Content-Length": str(size)}.items():
            self.send_header(name, value)
        self.end_headers()
        if isinstance(data, bytes):
            self.wfile.write(data)
        else:
            self.connection.sendfile(data, 0, size)  # streamed: a photo is never read whole

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
        raise HttpError(400, "the query string is not valid UTF-8 text (it holds bytes like %FF that are "
                        "not characters), or has too many fields (expected q=...&k=...)") from None


def _query_text(params: dict) -> str:
    raw = params.get("q", "")
    if len(raw) > MAX_QUERY_CHARS:
        raise HttpError(400, f"the query is too long (at most {MAX_QUERY_CHARS} characters)")
    try:
        return service.search_text(raw)  # as on the command line and through the daemon
    except service.ServiceError as exc:
        raise HttpError(400, str(exc)) from None


def _filter(params: dict) -> dict:
    """The request's filter fields (`under`, `from`, `to`, `tag`), checked: 400 if unreadable."""
    try:
        where = SearchFilter.from_request({key: params.get(key) or None for key in ("under", "from", "to", "tag")})
    except FilterError as exc:
        raise HttpError(400, str(exc).replace("--from", "from").replace("--to", "to")) from None
    if where.tag is not None and (len(where.tag) > 200 or not where.tag.isprintable()):
        raise HttpError(400, "the tag is not a tag's name (`/api/tags` lists them)")
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
    request_queue_size = socket.SOMAXCONN  # a burst of connections waits to be accepted

    def __init__(self, address, backend: LibraryBackend, log: service.Log, allowed_hosts=(), token=None):
        self.backend, self.log = backend, log
        self.loopback = is_loopback(address[0].strip("[]"))
        super().__init__(address, _Handler)
        self.access = Access(address[0], self.server_address[1], allowed_hosts, token)


def make_server(backend: LibraryBackend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                log: service.Log = service.quiet, allowed_hosts=(), token: str | None = None) -> _Server:
    """A bound, not yet serving, server (port 0: any free port; see `url`, which carries the
    run's token: a new random one unless `token` is given). `allowed_hosts`: names or
    addresses answered in the Host header besides loopback and `host` (web_access)."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("Server", (_Server,), {"address_family": family})
    try:
        return server_class((host, port), backend, log, allowed_hosts, token)
    except OSError as exc:
        raise service.ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                   "pick another port with --port") from None


def url(server: _Server, with_token: bool = True) -> str:
    """The page's address; with `with_token`, the link that lets a browser in (`?token=...`)."""
    host, port = server.server_address[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # where this machine's browser finds it
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    return base + (f"?{TOKEN_PARAM}={server.access.token}" if with_token else "")


def serve(library_dir=None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, checkpoint=None,
          log: service.Log = service.quiet, on_ready=None, stop: threading.Event | None = None,
          allowed_hosts=()) -> None:
    """Serve the page until Ctrl-C/SIGTERM (or `stop` is set); `on_ready(url)` once listening,
    with the URL that carries this run's token."""
    stop = stop or threading.Event()
    backend = LibraryBackend(library_dir, checkpoint, log)
    try:
        server = make_server(backend, host, port, log, allowed_hosts)
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
