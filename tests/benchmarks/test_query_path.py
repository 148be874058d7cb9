"""What `photosearch query` imports when the daemon answers: the warm query path stays light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from photosearch.indexer import ipc

HEAVY = ("torch", "transformers", "torchvision", "timm", "sqlalchemy", "faiss")


def _imported(code: str) -> list[str]:
    probe = code + f"\nimport sys; print('heavy:', [m for m in {HEAVY!r} if m in sys.modules])"
    env = {k: v for k, v in os.environ.items() if k != "PHOTOSEARCH_LIBRARY"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env,
                         cwd=Path(__file__).resolve().parent.parent.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_storage_package_and_library_dir_import_nothing_heavy():
    lines = _imported("import photosearch.storage; from photosearch.storage import default_library_dir; default_library_dir()")
    assert lines == ["heavy: []"]


def test_storage_names_still_load_on_use():
    lines = _imported("from photosearch.storage import Library, PhotoRecord, INDEXED; print(Library.__name__, INDEXED)")
    assert lines[0] == "Library indexed" and "sqlalchemy" in lines[1] and "faiss" in lines[1]


def test_query_answered_by_the_daemon_imports_neither_torch_nor_storage_engines(tmp_path):
    canned = {"query": "x", "k": 1, "under": None, "source": "daemon", "model_fingerprint": "f",
              "results": [{"rank": 1, "path": "/p/a.jpg", "score": 0.5}]}
    code = ("from photosearch.cli.main import cli\n"
            f"try: cli(['--library', {str(tmp_path)!r}, 'query', 'white chair'])\n"
            "except SystemExit: pass")
    with ipc.SocketServer(tmp_path, lambda request: canned, log=lambda m: None):
        lines = _imported(code)
    assert lines == ["1. /p/a.jpg (score: 0.500)", "heavy: []"]


def test_query_without_a_daemon_imports_no_torch_with_the_shipped_model(tmp_path):
    """The cold path: a MiniLM checkpoint's queries are encoded without torch or transformers,
    and the library is read without SQLAlchemy."""
    import numpy as np

    from photosearch.indexer.service import DEFAULT_CHECKPOINT, MODEL_META_KEY, model_fingerprint
    from photosearch.storage import Library, PhotoRecord

    if not DEFAULT_CHECKPOINT.is_file():
        import pytest

        pytest.skip("no shipped checkpoint")
    vectors = np.random.default_rng(0).standard_normal((3, 640)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    files = [tmp_path / "p" / f"{i}.jpg" for i in range(3)]
    files[0].parent.mkdir()
    for file in files:
        file.write_bytes(b"x")  # queries leave out photos whose file is gone (indexer.live_hits)
    library = tmp_path / "library"
    with Library.open(library) as lib:
        with lib.transaction():
            ids = lib.add_photos([PhotoRecord(path=str(f), size=1, mtime=1.0, fingerprint=f"f{i}")
                                  for i, f in enumerate(files)])
            lib.set_vectors(dict(zip(ids, vectors)))
            lib.set_meta(MODEL_META_KEY, model_fingerprint(DEFAULT_CHECKPOINT))
    code = ("from photosearch.cli.main import cli\n"
            f"try: cli(['--library', {str(library)!r}, 'query', '--paths-only', 'white chair'])\n"
            "except SystemExit: pass")
    lines = _imported(code)
    assert sorted(lines[:3]) == [str(f) for f in files]
    assert lines[3] == "heavy: ['faiss']"  # the library is read through sqlite3 (storage.reader)
