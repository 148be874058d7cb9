"""Which model a library's vectors come from: one library, one model.

Vectors of two different models live in different spaces, so a search over a mix of them
would rank garbage. The library remembers the fingerprint of the model that made its
vectors (meta key `model_fingerprint`); a scan with another model is refused until the
library is reindexed.
"""

from __future__ import annotations

MODEL_META_KEY = "model_fingerprint"


class ModelMismatchError(Exception):
    """The library's vectors come from another model; mixing them would make search garbage."""


def check_model(lib, fingerprint: str) -> None:
    """Adopt `fingerprint` while the library holds no vectors; else refuse a different model."""
    stored = lib.get_meta(MODEL_META_KEY)
    if stored == fingerprint:
        return
    if stored is not None and lib.stats()["vectors"] > 0:
        raise ModelMismatchError(
            f"the library was indexed with model {stored!r} but the loaded model is "
            f"{fingerprint!r}; reindex to switch models"
        )
    lib.set_meta(MODEL_META_KEY, fingerprint)
