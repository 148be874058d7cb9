"""The daemon's local socket: JSON lines over the Unix socket `daemon.sock` in the library.

Protocol: the client writes one JSON object per line and reads one JSON object per line
back, in order, on the same connection (it may send several requests).

    {"op": "ping"}                                   -> {"ok": true, "result": {...}}
    {"op": "query", "text": "white chair", "k": 10, "under": "/photos/2023"}
    {"op": "query", "terms": [{"text": "beach", "weight": 1}, {"image": "/a.jpg", "weight": -0.5}], "k": 10}
    {"op": "similar", "path": "/photos/a.jpg", "k": 10, "under": null}
    {"op": "browse", "offset": 0, "limit": 50}
    {"op": "status"}
    {"op": "duplicates", "near": true}
    {"op": "tags"}
    query, similar and browse take the filter fields under, from, to, tag (storage.search_filter)
    anything that fails                              -> {"ok": false, "error": "one line"}

Both sides write through `path_json.to_json` and read through `path_json.from_json`: a path that
is not valid UTF-8 travels as readable text plus its exact bytes (`"path_bytes"`, base64), so
every line is valid JSON for any client and names survive the trip byte for byte.

The socket is created mode 0600 (bound inside a private 0700 folder, then renamed into
place, so it is never reachable by others even for a moment). Only the holder of the
library lock serves it, so a socket file left by a killed daemon is simply replaced.

Stdlib only: the client side is what `photosearch query` runs when a daemon is up, and it
must start fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from photosearch.indexer.lock import holder
from photosearch.indexer.path_json import from_json, to_json

SOCKET_NAME = "daemon.sock"
MAX_LINE = 1 << 20  # bytes per request line
MAX_REPLY = 256 << 20  # bytes per reply line: a status lists every failed photo, and a
# library can hold tens of thousands of broken files
# How long a client waits for the answer once the daemon took its request. Generous: under a burst
# of clients on a busy machine the daemon is alive and working through its queue (300 parallel
# `photosearch query` processes on 2 loaded cores kept it 60+ s behind; benchmarks/bursts.py).
ANSWER_WAIT_S = 300.0
CONNECT_WAIT_S = 10.0  # how long a client keeps retrying a daemon too busy to accept it
MAX_SUN_PATH = 100  # Linux allows 107 bytes; longer paths go through /proc/self/fd

Handler = Callable[[dict], dict]  # request -> result; raises to answer with an error


class IpcError(Exception):
    """Talking to the daemon, or opening its socket, failed; the message is for the user."""

    user_facing = True


class DaemonUnavailable(IpcError):
    """No daemon answers on this library's socket (none runs, or it just died)."""


class RemoteError(IpcError):
    """The daemon answered with an error (or not in time); the message is for the user."""


def socket_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / SOCKET_NAME


@contextlib.contextmanager
def _addressable(path: Path):
    """`path` itself, or an equivalent short /proc/self/fd path when it is too long for AF_UNIX."""
    if len(os.fsencode(path)) <= MAX_SUN_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


# -- client ------------------------------------------------------------------------------------
def request(folder: str | os.PathLike, payload: dict, timeout: float = ANSWER_WAIT_S) -> dict:
    """Send one request to the library's daemon and return its result.

    A daemon whose accept queue is full (a burst of clients) is tried again with a growing
    pause, for up to CONNECT_WAIT_S seconds; so is a refused socket while a daemon holds the
    library's lock (it is starting, or replacing its socket). DaemonUnavailable if no daemon
    listens (or it went away before answering); RemoteError if it answered with an error or
    not within `timeout` seconds; IpcError if the socket belongs to another account.
    """
    path = socket_path(folder)
    sock = _connect(path, min(timeout, 5.0))
    try:
        sock.settimeout(timeout)
        try:
            sock.sendall(json.dumps(to_json(payload)).encode() + b"\n")
            line = _read_line(sock.makefile("rb"))
        except socket.timeout:
            raise RemoteError(f"the daemon did not answer within {timeout:g} s; try again") from None
        except OSError as exc:
            raise DaemonUnavailable(f"the daemon went away: {exc}") from None
    finally:
        sock.close()
    if not line:
        raise DaemonUnavailable("the daemon closed the connection without answering")
    try:
        reply = json.loads(line)
    except ValueError:
        raise RemoteError("the daemon sent an unreadable reply") from None
    if not reply.get("ok"):
        raise RemoteError(str(reply.get("error") or "the daemon reported an unknown error"))
    return from_json(reply.get("result") or {})


def _connect(path: Path, timeout: float) -> socket.socket:
    """A socket connected to the daemon at `path`, retrying a busy one (see `request`)."""
    deadline, pause = time.monotonic() + CONNECT_WAIT_S, 0.005
    while True:
        _require_own_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            with _addressable(path) as address:
                sock.connect(address)
            return sock
        except BlockingIOError:  # EAGAIN: its accept queue is full
            retry, why = True, "the daemon is busy (its queue of connections is full)"
        except ConnectionRefusedError as exc:  # a socket file nobody listens on
            running = holder(path.parent)
            retry, why = bool(running and running[1] == "watch"), f"no daemon on {path}: {exc.strerror}"
        except (FileNotFoundError, NotADirectoryError) as exc:
            retry, why = False, f"no daemon on {path}: {exc.strerror}"
        except OSError as exc:
            retry, why = False, f"cannot reach the daemon on {path}: {exc}"
        sock.close()
        if not retry or time.monotonic() + pause > deadline:
            raise DaemonUnavailable(why)
        time.sleep(pause * (0.5 + random.random()))  # jittered: a burst of clients spreads out
        pause = min(pause * 2, 0.25)


def _require_own_socket(path: Path) -> None:
    try:
        owner = os.lstat(path).st_uid
    except OSError:
        return  # connecting says what is wrong
    if owner != os.geteuid():
        raise IpcError(f"refusing the daemon socket {path}: it belongs to another account (uid {owner})")


def _read_line(stream) -> bytes:
    line = stream.readline(MAX_REPLY + 1)
    if len(line) > MAX_REPLY:
        raise RemoteError("reply too long")
    return line


# -- server ------------------------------------------------------------------------------------
class _Connection(socketserver.StreamRequestHandler):
    timeout = 300  # an idle client is dropped after this many seconds

    def handle(self) -> None:
        while True:
            try:
                line = self.rfile.readline(MAX_LINE + 1)
            except OSError:
                return
            if not line:
                return
            reply = self.server.answer(line)  # type: ignore[attr-defined]
            try:
                self.wfile.write(json.dumps(to_json(reply)).encode() + b"\n")
                self.wfile.flush()
            except OSError:
                return


class _ThreadingServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True  # a stuck client must not keep the daemon from exiting
    block_on_close = False
    request_queue_size = socket.SOMAXCONN  # a burst of clients waits in the kernel's queue, not refused

    def __init__(self, address: str, handle: Handler, log: Callable[[str], None]):
        self.handle_request_dict = handle
        self.log = log
        super().__init__(address, _Connection, bind_and_activate=True)

    def answer(self, line: bytes) -> dict:
        if len(line) > MAX_LINE:
            return {"ok": False, "error": "request too long"}
        try:
            request_dict = json.loads(line)
            if not isinstance(request_dict, dict):
                raise ValueError("not an object")
            request_dict = from_json(request_dict)
        except ValueError:
            return {"ok": False, "error": "bad request: expected one JSON object per line"}
        try:
            return {"ok": True, "result": self.handle_request_dict(request_dict)}
        except Exception as exc:  # noqa: BLE001 - every failure becomes a one-line reply
            message = str(exc) or type(exc).__name__
            if not getattr(exc, "user_facing", False):
                self.log(f"error answering {request_dict.get('op')!r}: {type(exc).__name__}: {message}")
            return {"ok": False, "error": message}


class SocketServer:
    """Answers requests with `handle` on `<folder>/daemon.sock`, in a background thread.

    `handle(request) -> result` runs in a thread per connection; an exception becomes an
    error reply (its message is sent to the client; exceptions without a true
    `user_facing` attribute are also logged).
    """

    def __init__(self, folder: str | os.PathLike, handle: Handler, log: Callable[[str], None] | None = None):
        self.path = socket_path(folder)
        self._handle = handle
        self._log = log or (lambda message: print(message, file=sys.stderr))
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:  # a read-only or full file system fails here or at the bind below
            private = Path(tempfile.mkdtemp(prefix=".sock-", dir=self.path.parent))  # mode 0700
        except OSError as exc:
            raise IpcError(f"cannot create the daemon's socket in {self.path.parent}: "
                           f"{exc.strerror or exc}") from None
        try:
            staged = private / SOCKET_NAME
            try:
                with _addressable(staged) as address:
                    server = _ThreadingServer(address, self._handle, self._log)
            except OSError as exc:
                raise IpcError(f"cannot create the daemon's socket in {self.path.parent}: {exc.strerror or exc}") from None
            try:
                os.chmod(staged, 0o600)
                os.replace(staged, self.path)  # replaces a socket left by a killed daemon
            except BaseException:
                server.server_close()
                raise
        finally:
            shutil.rmtree(private, ignore_errors=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="ipc-server"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, join the server thread and remove the socket file. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        try:
            server.shutdown()
            if self._thread is not None:
                self._thread.join()
        finally:
            server.server_close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> SocketServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
