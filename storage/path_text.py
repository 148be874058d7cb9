"""File paths as SQLite text, including paths that are not valid UTF-8.

Linux file names are bytes. Python turns the bytes that are not UTF-8 into lone surrogates
(``os.fsdecode``: ``b"caf\\xe9.jpg"`` -> ``"caf\\udce9.jpg"``), which SQLite text cannot hold.
``PathText`` stores each such surrogate as a NUL followed by the raw byte's code point
(``"\\x00\\xe9"``). A path never contains NUL, so the mapping is reversible; it is applied
character by character, so a folder's prefix stays the prefix of its files' paths and the
``under`` range queries keep working. Valid UTF-8 paths are stored unchanged.
"""

from __future__ import annotations

import re

_SURROGATE_ESCAPE = re.compile("[\udc80-\udcff]")
_STORED_BYTE = re.compile("\x00([\x80-\xff])")


def to_stored(path: str) -> str:
    """The text SQLite keeps for ``path``."""
    if path.isascii():
        return path
    return _SURROGATE_ESCAPE.sub(lambda m: "\x00" + chr(ord(m.group()) - 0xDC00), path)


def from_stored(text: str) -> str:
    """The path that ``to_stored`` turned into ``text``."""
    if "\x00" not in text:
        return text
    return _STORED_BYTE.sub(lambda m: chr(0xDC00 + ord(m.group(1))), text)
