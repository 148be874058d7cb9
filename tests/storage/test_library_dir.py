"""Library location, SQLite settings, and the package's import boundary."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from photosearch.storage import Library, default_library_dir

REPO = Path(__file__).resolve().parents[2]


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


def test_storage_never_imports_torch():
    code = "import sys, storage; assert 'torch' not in sys.modules, 'storage imported torch'"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
