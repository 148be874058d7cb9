"""Photo library storage: SQLite (through SQLAlchemy) for photos, FAISS for their vectors.

Imports numpy, faiss and sqlalchemy, never torch. Raises ``StorageError`` (and subclasses),
never prints or exits. See ``docs/DESIGN.md`` for the contract.
"""

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
from .vector_index import IndexConfig

__all__ = [
    "ClosedError",
    "DimensionError",
    "FAILED",
    "INDEXED",
    "IndexConfig",
    "IndexSaveError",
    "Library",
    "MISSING",
    "PENDING",
    "PathConflictError",
    "PhotoNotFoundError",
    "PhotoRecord",
    "ReadOnlyError",
    "RootRecord",
    "STATUSES",
    "SchemaError",
    "SearchHit",
    "StorageError",
    "default_library_dir",
    "recall_at_k",
]
