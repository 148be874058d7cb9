"""Library location, SQLite settings, and the package's import boundary."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from photosearch.storage import Library, default_library_dir



def test_default_library_dir_precedence(tmp_path):
    home = Path.home()
    assert default_library_dir({}) == home / ".local/share/photosearch"
    assert default_library_dir({"XDG_DATA_HOME": "/xdg"}) == Path("/xdg/photosearch")
    assert default_library_dir({"XDG_DATA_HOME": ""}) == home / ".local/share/photosearch"
    env = {"XDG_DATA_HOME": "/xdg", "PHOTOSEARCH_LIBRARY": str(tmp_path / "mine")}
    assert default_library_dir(env) == tmp_path / "mine"
    assert default_library_dir({"PHOTOSEARCH_LIBRARY": "~/pics"}) == home / "pics"


def test_open_creates_nested_folder_with_wal_database(tmp_path):
    folder = tmp_path / "a" / "b"
    with Library.open(folder) as lib:
        with lib._read() as session:
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert session.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    conn = sqlite3.connect(folder / "library.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


HEAVY = ("torch", "torchvision", "timm", "transformers")
# A whole round trip through storage in a fresh interpreter: create a library on disk, add photos
# and vectors, search, reopen it read-only and search again; then list the heavy modules loaded.
ROUND_TRIP = """
import sys
import numpy as np
from photosearch.storage import Library, PhotoRecord

folder, heavy = sys.argv[1], sys.argv[2:]
vectors = np.eye(3, 8, dtype=np.float32)  # (3, D)
with Library.open(folder) as lib:
    ids = [lib.add_photo(PhotoRecord(path=f"/photos/{n}.jpg", size=1, mtime=0.0, fingerprint=n)) for n in "abc"]
    lib.set_vectors(dict(zip(ids, vectors)))
    assert [h.photo.path for h in lib.search(vectors[1], 1)] == ["/photos/b.jpg"]
with Library.open(folder, read_only=True) as lib:
    assert [h.photo.path for h in lib.search(vectors[2], 3)][0] == "/photos/c.jpg"
    assert lib.stats()["photos"] == 3
print("loaded:", [name for name in heavy if name in sys.modules])
"""


def test_storage_never_imports_torch(tmp_path):
    """Storage used for real (open, add, set vectors, search, reopen) loads no model library."""
    result = subprocess.run([sys.executable, "-c", ROUND_TRIP, str(tmp_path / "lib"), *HEAVY], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded: []", "storage imported " + result.stdout
    assert (tmp_path / "lib" / "library.sqlite").is_file()
