"""Where photosearch keeps what it can compute again: feature caches, verified-file stamps."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$PHOTOSEARCH_CACHE, else $XDG_CACHE_HOME/photosearch, else ~/.cache/photosearch."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("PHOTOSEARCH_CACHE", os.path.join(base, "photosearch")))
