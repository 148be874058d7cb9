"""Photo library storage: SQLite (through SQLAlchemy) for photos, FAISS for their vectors.

Imports numpy, faiss and sqlalchemy, never torch. Raises ``StorageError`` (and subclasses),
never prints or exits. See ``docs/DESIGN.md`` for the contract.

The names below are loaded on first use (PEP 562), so ``import storage`` and
``storage.default_library_dir`` stay cheap: `photosearch query` answered by the daemon must not
pay for importing SQLAlchemy and FAISS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_HOME = {  # exported name -> the submodule that defines it
    "ClosedError": "errors",
    "DimensionError": "errors",
    "IndexSaveError": "errors",
    "PathConflictError": "errors",
    "PhotoNotFoundError": "errors",
    "ReadOnlyError": "errors",
    "SchemaError": "errors",
    "StorageError": "errors",
    "Library": "library",
    "default_library_dir": "library_dir",
    "recall_at_k": "recall",
    "FAILED": "records",
    "INDEXED": "records",
    "MISSING": "records",
    "PENDING": "records",
    "STATUSES": "records",
    "PhotoRecord": "records",
    "RootRecord": "records",
    "SearchHit": "records",
    "IndexConfig": "vector_index",
    "storage_fault": "faults",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .errors import (
        ClosedError,
        DimensionError,
        IndexSaveError,
        PathConflictError,
        PhotoNotFoundError,
        ReadOnlyError,
        SchemaError,
        StorageError,
    )
    from .library import Library
    from .library_dir import default_library_dir
    from .recall import recall_at_k
    from .records import FAILED, INDEXED, MISSING, PENDING, STATUSES, PhotoRecord, RootRecord, SearchHit
    from .faults import storage_fault
    from .vector_index import IndexConfig
