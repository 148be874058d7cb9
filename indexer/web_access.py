"""Who `photosearch serve` answers: a request through an allowed Host name that carries this
run's token.

The token: a page on 127.0.0.1 is reachable by every account on the machine, so file
permissions alone would not keep another user from the owner's photos. Each run draws a
random token; the URL the command prints carries it (`/?token=...`), the first visit trades
it for an HttpOnly, SameSite=Strict cookie (and is redirected to the same page without it,
so it stays out of the address bar and history), and every request after (the API, `/thumb/ID`,
`/photo/ID`) must carry the cookie, or the token as `?token=` (for curl). The cookie's name
holds the port: two servers on one machine do not overwrite each other's.

The Host allow-list: a web page the user visits can make the browser send requests to any
address by pointing its own name at it (DNS rebinding); those requests carry that page's
name in Host. Only loopback names (localhost, 127.0.0.0/8, ::1), the address the server was
told to listen on and the names passed with `serve --allow-host` are answered, on every bind,
0.0.0.0 and :: included.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import os
import secrets
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

TOKEN_PARAM = "token"
OPENER_NAME = "open-page.html"  # in the library folder: 0600 inside 0700
WILDCARDS = frozenset({"", "0", "0.0.0.0", "::", "[::]"})  # listen on every address: not a name


class AccessDenied(Exception):
    """The request may not be answered; `status` is 403, the message says why."""

    status = 403


class Access:
    """The token and Host allow-list of one server run."""

    def __init__(self, host: str, port: int, allowed_hosts: Iterable[str] = (), token: str | None = None):
        self.token = token or secrets.token_urlsafe(24)
        self.cookie_name = f"photosearch-{port}"
        self.names = {_bare(name) for name in allowed_hosts if _bare(name)}
        if _bare(host) not in WILDCARDS:
            self.names.add(_bare(host))

    def check_host(self, header: str | None) -> None:
        """AccessDenied unless the Host header names this server (a missing one is HTTP/1.0)."""
        if not header:
            return
        name = _host_name(header)
        if not (is_loopback(name) or name in self.names):
            raise AccessDenied(f"this server does not answer to the name {name[:80]!r}: add it with "
                               "`photosearch serve --allow-host NAME`")

    def check_token(self, cookie_header: str | None, query_token: str | None) -> bool:
        """True when the request carries the token in the query string (set the cookie then),
        False when it carries the cookie; AccessDenied when neither."""
        if query_token is not None and hmac.compare_digest(query_token.encode(), self.token.encode()):
            return True
        if hmac.compare_digest(self._cookie_value(cookie_header).encode(), self.token.encode()):
            return False
        raise AccessDenied("open the link that `photosearch serve` printed (it carries this run's token)")

    def set_cookie(self) -> str:
        return f"{self.cookie_name}={self.token}; HttpOnly; SameSite=Strict; Path=/"

    def _cookie_value(self, header: str | None) -> str:
        if not header:
            return ""
        try:
            morsel = SimpleCookie(header).get(self.cookie_name)
        except CookieError:
            return ""
        return morsel.value if morsel is not None else ""


def is_loopback(name: str) -> bool:
    """Whether a host name or address (no brackets, no port) is this machine's loopback."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _host_name(header: str) -> str:
    """"[::1]:8765" -> "::1", "Example.com:80" -> "example.com"."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") > 1:
        return host  # a bare IPv6 address (not valid in Host, but unambiguous)
    return host.split(":", 1)[0].rstrip(".")


def _bare(name: str) -> str:
    name = name.strip().lower()
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name.rstrip(".")


def open_in_browser(link: str, folder: str | os.PathLike) -> Path:
    """Open `link` in the user's web browser without putting its token on a command line
    (which `ps` shows every account): the browser is given a private file (0600, in the
    library's 0700 folder) that redirects to the link. Returns that file. Raises OSError if
    it cannot be written; says nothing if no browser can be found (the link is printed anyway)."""
    import webbrowser

    opener = Path(folder) / OPENER_NAME
    fd = os.open(opener, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        target = html.escape(link, quote=True)
        fh.write(f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={target}">'
                 f'<title>photosearch</title><a href="{target}">photosearch</a>\n')
    webbrowser.open(opener.as_uri())
    return opener
