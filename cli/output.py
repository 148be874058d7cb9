"""Printing for every command: results on stdout, messages on stderr, names as their own bytes.

A file name is bytes and need not be valid UTF-8 (Python holds such bytes as lone surrogates).
`say` and `warn` write a path, or a line quoting paths, as the file system's original bytes
whatever the locale (a strict UTF-8 stdout would refuse them); `dump` writes JSON through
`indexer.path_json.to_json` (readable "path" plus exact "path_bytes" for such names).
"""

from __future__ import annotations

import json

import click

from photosearch.indexer.path_json import to_bytes, to_json


def say(text: str, end: bytes = b"\n") -> None:
    """`text` on stdout, followed by `end` (b"\\0" for NUL-separated output)."""
    click.echo(to_bytes(text) + end, nl=False)


def warn(message: str) -> None:
    """`message` on stderr (progress, warnings, the daemon's log)."""
    click.echo(to_bytes(message), err=True)


def dump(value) -> None:
    """`value` as indented JSON on stdout, names that are not UTF-8 made lossless."""
    click.echo(json.dumps(to_json(value), indent=2))
