"""Concurrent use: a reader process during writes (WAL), and a writer + a query thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path


from photosearch.storage import Library

from .conftest import brute_force, fill, unit_vectors

REPO = Path(__file__).resolve().parents[2]

READER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from photosearch.storage import Library

    folder, target = sys.argv[1], int(sys.argv[2])
    query = np.ones(16, dtype=np.float32) / 4
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        with Library.open(folder, read_only=True) as lib:
            stats = lib.stats()  # one read transaction: a consistent snapshot
            hits = lib.search(query, 5)
        indexed, vectors = stats["by_status"]["indexed"], stats["vectors"]
        seen.append([indexed, vectors, len(hits)])
        if len(seen) == 1:
            print("ready", flush=True)
        if indexed >= target:
            break
    print(json.dumps(seen), flush=True)
    """
)


def test_reader_process_sees_consistent_snapshots_while_writing(tmp_path):
    folder = tmp_path / "lib"
    batches, size = 30, 20
    vectors = unit_vectors(batches * size + size)
    lib = Library.open(folder)
    fill(lib, [f"/first/{i}.jpg" for i in range(size)], vectors[:size])
    lib.save_index()
    target = size * (batches + 1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(folder), str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
        for b in range(1, batches + 1):
            chunk = slice(b * size, (b + 1) * size)
            fill(lib, [f"/batch{b}/{i}.jpg" for i in range(size)], vectors[chunk])
            if b % 10 == 0:
                lib.save_index()
            time.sleep(0.02)  # let the reader take several snapshots mid-way
        out, err = reader.communicate(timeout=90)
    finally:
        reader.kill()
        lib.close()
    assert reader.returncode == 0, err
    seen = json.loads(out.strip().splitlines()[-1])
    assert len({indexed for indexed, _, _ in seen}) >= 3, seen  # it really read during the writes
    assert all(indexed == vectors_ for indexed, vectors_, _ in seen)  # rows and vectors together
    assert all(hits == min(5, indexed) for indexed, _, hits in seen)
    counts = [indexed for indexed, _, _ in seen]
    assert counts == sorted(counts) and counts[-1] == target
    assert all(count % size == 0 for count in counts)  # never half a batch


def test_writer_thread_and_query_thread_share_a_library(tmp_path):
    lib = Library.open(tmp_path / "lib")
    vectors = unit_vectors(600)
    queries = unit_vectors(10, seed=1)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for b in range(30):
                chunk = slice(b * 20, (b + 1) * 20)
                ids = fill(lib, [f"/t/{b}/{i}.jpg" for i in range(20)], vectors[chunk])
                lib.remove(ids[0])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    def query() -> None:
        try:
            while not done.is_set():
                for q in queries:
                    hits = lib.search(q, 5)
                    assert all(h.photo.status == "indexed" for h in hits)
                    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=query)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    ids, stored = lib.ids_and_vectors()
    assert len(ids) == 570
    for q in queries:
        assert [h.photo.id for h in lib.search(q, 5)] == brute_force(q, list(ids), stored, 5)
    lib.close()
