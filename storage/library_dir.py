"""Where the library folder lives by default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

LIBRARY_ENV = "PHOTOSEARCH_LIBRARY"


def default_library_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$PHOTOSEARCH_LIBRARY`` if set, else ``$XDG_DATA_HOME/photosearch``, else
    ``~/.local/share/photosearch``. Empty variables count as unset (XDG convention)."""
    if env.get(LIBRARY_ENV):
        return Path(env[LIBRARY_ENV]).expanduser()
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]).expanduser() / "photosearch"
    return Path.home() / ".local" / "share" / "photosearch"
