"""File names that are not valid UTF-8, in JSON and on stdout, without loss.

Linux file names are bytes. Python holds the bytes that are not UTF-8 as lone surrogates
(``os.fsdecode``: ``b"No\\xebl"`` -> ``"No\\udcebl"``), which JSON text cannot carry (``json.dumps``
writes ``"\\udceb"``, an escape that many parsers reject or turn into U+FFFD) and a strict UTF-8
stdout refuses (``UnicodeEncodeError ... surrogates not allowed``).

Every JSON this program writes (``--json``, the daemon socket, the web API) goes through
``to_json``, which is lossless:

- a string field ``X`` holding such bytes stays readable (each bad byte becomes U+FFFD) and gains
  ``X_bytes``: the exact bytes, base64 (standard alphabet, padded);
- a list field ``X`` holding such strings gains ``X_bytes``: a list as long as ``X``, base64 for
  those items and null for the others.

Valid UTF-8 values are left alone, so ``_bytes`` fields appear only for such names.
``from_json`` undoes it. ``to_bytes`` gives the exact bytes for plain (non-JSON) output.
Stdlib only: the daemon's client imports it.
"""

from __future__ import annotations

import base64
import os
import re

_SURROGATE = re.compile("[\ud800-\udfff]")
SUFFIX = "_bytes"


def to_bytes(text: str) -> bytes:
    """The file system's bytes for ``text`` (a path, or a line quoting paths)."""
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:  # a surrogate that no file name produced: show it escaped
        return text.encode("utf-8", "backslashreplace")


def is_lossy(value: object) -> bool:
    """True for text that holds bytes which are not valid UTF-8."""
    return isinstance(value, str) and not value.isascii() and _SURROGATE.search(value) is not None


def readable(text: str) -> str:
    """``text`` as valid Unicode: each byte that is not UTF-8 becomes U+FFFD."""
    return to_bytes(text).decode("utf-8", "replace") if is_lossy(text) else text


def _b64(text: str) -> str:
    return base64.b64encode(to_bytes(text)).decode("ascii")


def _unb64(data: str) -> str:
    return os.fsdecode(base64.b64decode(data, validate=True))


def to_json(value):
    """``value`` (dicts, lists, scalars) with every undecodable name made JSON-safe (see above)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if is_lossy(item):
                out[key], out[f"{key}{SUFFIX}"] = readable(item), _b64(item)
            elif isinstance(item, list) and any(map(is_lossy, item)):
                out[key] = [to_json(x) for x in item]
                out[f"{key}{SUFFIX}"] = [_b64(x) if is_lossy(x) else None for x in item]
            else:
                out[key] = to_json(item)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(x) for x in value]
    return readable(value) if is_lossy(value) else value


def from_json(value):
    """The value ``to_json`` was given: ``X_bytes`` fields restore ``X`` exactly, then go."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith(SUFFIX) and key[: -len(SUFFIX)] in value:
                continue
            exact = value.get(f"{key}{SUFFIX}")
            if isinstance(exact, str):
                out[key] = _unb64(exact)
            elif isinstance(exact, list) and isinstance(item, list) and len(exact) == len(item):
                out[key] = [_unb64(b) if isinstance(b, str) else from_json(x) for x, b in zip(item, exact)]
            else:
                out[key] = from_json(item)
        return out
    if isinstance(value, list):
        return [from_json(x) for x in value]
    return value
