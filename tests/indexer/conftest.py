"""Fixtures for the indexer tests: stand-in model, library, embedder, scanner, leak check."""

from __future__ import annotations

import threading
import time

import pytest

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.scanner import Scanner
from photosearch.storage import Library
from tests.indexer.stand_ins import ColourModel


@pytest.fixture
def model():
    return ColourModel()


@pytest.fixture
def lib():
    library = Library.in_memory()
    yield library
    library.close()


@pytest.fixture
def embedder(model):
    with Embedder(model, batch_size=4, workers=2) as emb:
        yield emb


@pytest.fixture
def scanner(lib, embedder):
    return Scanner(lib, embedder, batch_size=4)


@pytest.fixture(autouse=True)
def no_thread_leaks():
    """Fail any test that leaves a thread running (decode pools, watcher workers, observers)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"threads leaked: {[t.name for t in leaked]}"
