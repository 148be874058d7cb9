"""Saving the index while it is used: saves racing queries, kill -9 in a save, read-only opens
of a file behind the database, and the bytes that periodic saves write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from photosearch.storage import IndexConfig, Library
from photosearch.storage import index_file
from photosearch.storage.index_file import INDEX_NAME

from .conftest import fill, unit_vectors

REPO = Path(__file__).resolve().parents[2]
EXACT_IVF = IndexConfig(kind="ivf", ivf_nprobe=1 << 20)
CONFIGS = {"flat": IndexConfig(kind="flat"), "ivf": EXACT_IVF}


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_a_save_racing_queries_never_returns_a_wrong_or_missing_result(tmp_path, kind):
    n, dim, fixed = 3000, 32, 200
    vectors = unit_vectors(n, dim, seed=1)
    lib = Library.open(tmp_path / "lib", index=CONFIGS[kind])
    ids = fill(lib, [f"/r/{i}.jpg" for i in range(n)], vectors)
    stop, failures, queries, saves = threading.Event(), [], [0], [0]

    def query() -> None:  # photos[:fixed] never change: each is its own best match, score 1
        rng = np.random.default_rng(threading.get_ident() % 1000)
        while not stop.is_set():
            i = int(rng.integers(fixed))
            hits = lib.search(vectors[i], 5)
            if len(hits) != 5 or hits[0].photo.id != ids[i] or abs(hits[0].score - 1) > 1e-4:
                failures.append((i, [(h.photo.id, h.score) for h in hits]))
            queries[0] += 1

    def write() -> None:  # edits and deletes of the other photos, each round followed by a save
        rng, pool = np.random.default_rng(2), list(ids[fixed:])
        try:
            while not stop.is_set():
                chosen = rng.choice(pool, 20, replace=False).tolist()
                lib.set_vectors(dict(zip(chosen, unit_vectors(20, dim, seed=int(rng.integers(1 << 30))))))
                lib.remove(chosen[0])
                pool.remove(chosen[0])
                lib.save_index()
                saves[0] += 1
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(repr(exc))

    threads = [threading.Thread(target=query) for _ in range(3)] + [threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not failures, failures[:3]
    assert queries[0] > 50 and saves[0] > 3
    assert lib.check_index() is None
    lib.close()


SAVER = """
import sys
import numpy as np
from photosearch.storage import IndexConfig, Library

lib = Library.open(sys.argv[1], index=IndexConfig(kind=sys.argv[2], ivf_nprobe=1 << 20))
rng = np.random.default_rng(int(sys.argv[3]))
ids, vectors = lib.ids_and_vectors()
print("ready", flush=True)
while True:  # edit a few vectors, delete one, save the whole index, again and again, until killed
    chosen = [int(i) for i in rng.choice(ids, 5, replace=False)]
    fresh = rng.standard_normal((5, vectors.shape[1])).astype(np.float32)
    lib.set_vectors(dict(zip(chosen, fresh / np.linalg.norm(fresh, axis=1, keepdims=True))))
    lib.remove(chosen[0])
    ids = ids[ids != chosen[0]]
    lib.save_index()
"""


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_kill_9_during_a_save_leaves_a_library_that_opens_and_agrees_with_sqlite(tmp_path, kind):
    folder, count = tmp_path / "lib", 6000
    with Library.open(folder, index=CONFIGS[kind]) as lib:
        fill(lib, [f"/p/{i:05d}.jpg" for i in range(count)], unit_vectors(count, 64))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    inside = 0
    for kill in range(3):
        tmp = folder / (INDEX_NAME + ".tmp")
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(folder), kind, str(kill)], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not tmp.exists():
                pass  # the moment a save starts writing
            child.send_signal(signal.SIGKILL)
            inside += tmp.exists()
        finally:
            child.kill()
            child.wait(10)
            child.stdout.close()
            child.stderr.close()
        with Library.open(folder, index=CONFIGS[kind]) as lib:
            assert lib.check_index() is None
            ids, vectors = lib.ids_and_vectors()
            assert lib.stats()["index_entries"] == ids.size == lib.stats()["vectors"]
            assert [h.photo.id for h in lib.search(vectors[-1], 1)] == [ids[-1]]
    assert inside >= 2, "the kills should land inside saves"


def test_a_stale_file_on_a_read_only_open_is_served_warned_about_and_not_rebuilt(tmp_path):
    folder, config = tmp_path / "lib", IndexConfig(kind="ivf", ivf_threshold=100, ivf_nprobe=1 << 20)
    vectors = unit_vectors(400, seed=3)
    with Library.open(folder, index=config) as lib:
        ids = fill(lib, [f"/s/{i}.jpg" for i in range(300)], vectors[:300])
    saved = (folder / INDEX_NAME).stat()
    writer = Library.open(folder, index=config)  # a writer that stops mid-way, without saving
    later = fill(writer, [f"/s/{i}.jpg" for i in range(300, 400)], vectors[300:])
    writer.remove(ids[0])
    writer._engine.dispose()
    with Library.open(folder, index=config, read_only=True) as lib:
        warning = lib.index_warning
        assert warning is not None and "\n" not in warning
        assert "before the library's last 2 vector update(s)" in warning and "`photosearch index`" in warning
        stats = lib.stats()
        assert stats["index_stale"] == warning and stats["index_repair"] is None
        assert stats["index_entries"] == 300  # the file as saved: served, not rebuilt
        assert [h.photo.id for h in lib.search(vectors[5], 1)] == [ids[5]]
        assert later[0] not in [h.photo.id for h in lib.search(vectors[300], 3)]  # not in the file yet
        assert ids[0] not in [h.photo.id for h in lib.search(vectors[0], 3)]  # deleted rows never show
    assert (folder / INDEX_NAME).stat().st_mtime_ns == saved.st_mtime_ns
    with Library.open(folder, index=config) as lib:  # the next writer catches the file up
        assert lib.stats()["index_repair"].startswith("stale") and lib.check_index() is None
    with Library.open(folder, index=config, read_only=True) as lib:
        assert lib.index_warning is None
        assert [h.photo.id for h in lib.search(vectors[300], 1)] == [later[0]]


def test_a_large_library_without_an_index_file_is_not_built_by_a_read_only_open(tmp_path):
    folder, config = tmp_path / "lib", IndexConfig(ivf_threshold=100)
    vectors = unit_vectors(300, seed=4)
    with Library.open(folder, index=config) as lib:
        fill(lib, [f"/m/{i}.jpg" for i in range(300)], vectors)
    (folder / INDEX_NAME).unlink()
    with Library.open(folder, index=config, read_only=True) as lib:
        assert lib.search(vectors[0], 3) == []
        assert lib.index_warning.startswith("no usable search index (missing)")
    assert not (folder / INDEX_NAME).exists()


def test_periodic_saves_while_indexing_write_bytes_in_proportion_to_the_library(tmp_path, monkeypatch):
    written = []
    real_save = index_file.save

    def counting_save(folder, vindex):
        real_save(folder, vindex)
        written.append(index_file.index_bytes(folder))

    monkeypatch.setattr(index_file, "save", counting_save)
    config = IndexConfig(ivf_threshold=2000)
    n, batch = 8000, 40
    vectors = unit_vectors(n, 32, seed=5)
    with Library.open(tmp_path / "lib", index=config) as lib:
        for start in range(0, n, batch):  # as the scanner does: a commit per batch, a "save if due" after
            fill(lib, [f"/b/{i}.jpg" for i in range(start, start + batch)], vectors[start:start + batch])
            lib.save_index_if_due()
        assert lib.stats()["index_type"] == "ivf"
    final = index_file.index_bytes(tmp_path / "lib")
    assert len(written) <= 12  # about log2(8000 / 40) saves, not 200
    assert sum(written) <= 3 * final, (sum(written), final)
