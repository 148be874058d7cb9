"""Exceptions raised by the storage package.

Storage never prints or exits: every failure surfaces as a :class:`StorageError` (or a subclass)
whose message says what went wrong and, where possible, what to do about it.
"""


class StorageError(Exception):
    """Base class of every error raised by ``storage``."""


class SchemaError(StorageError):
    """The database schema cannot be used by this version of the code (too new, or broken)."""


class DimensionError(StorageError):
    """A vector's dimension does not match the library's vector dimension."""


class PhotoNotFoundError(StorageError):
    """No photo with the given id (or path) exists in the library."""


class PathConflictError(StorageError):
    """Another photo already has the target path."""


class IndexSaveError(StorageError):
    """The FAISS index could not be written; the previous index file was left untouched."""


class ReadOnlyError(StorageError):
    """A write was attempted on a library opened with ``read_only=True``."""


class ClosedError(StorageError):
    """The library was used after :meth:`storage.Library.close`."""
