"""Which encoder answers queries: the torch-free one where the checkpoint allows, never a stale one."""

from __future__ import annotations

import pytest

from photosearch.indexer import service
from photosearch.miniclip.query_encoder import QueryEncoder


@pytest.fixture(scope="module")
def shipped_model():
    if not service.DEFAULT_CHECKPOINT.is_file():
        pytest.skip("no shipped checkpoint")
    return service.load_model(None)


def test_a_minilm_checkpoint_is_queried_without_torch(shipped_model):
    fast = service.query_model_for(shipped_model)
    assert isinstance(fast, QueryEncoder) and fast.fingerprint == shipped_model.fingerprint
    assert isinstance(service.load_query_model(None), QueryEncoder)


def test_the_daemon_keeps_its_model_when_the_file_changed_under_it(shipped_model, monkeypatch):
    monkeypatch.setattr(shipped_model, "fingerprint", "another-model")  # as if retrained in place
    assert service.query_model_for(shipped_model) is shipped_model
