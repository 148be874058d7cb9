"""The state every ``Library`` method stands on: its engine, its vector store, and the one
explicit transaction scope.

``LibraryCore`` is the base of ``storage.library.Library`` and of the method groups mixed
into it (``library_photos.PhotoMethods``, ``library_vectors.VectorMethods``); it is not
used on its own. Every method runs in the calling thread's open ``lib.transaction()`` if
there is one, else in its own short transaction (``storage.database``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from .database import Transaction, TransactionScope
from .errors import ClosedError, ReadOnlyError
from .vector_index import IndexConfig
from .vector_store import VectorStore

PathLike = str | os.PathLike[str]


class LibraryCore:
    """Engine, vector store and transaction scope of one library (see ``Library``)."""

    def __init__(self, engine: Engine, folder: Path | None, config: IndexConfig, read_only: bool):
        """Use :meth:`Library.open` or :meth:`Library.in_memory` instead."""
        self.folder = folder
        self.read_only = read_only
        self._engine = engine
        self._closed = False
        self._scope = TransactionScope(engine, commit=self._commit)
        self._vectors = VectorStore(folder, config, read=self._scope.read, read_only=read_only)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The one explicit transaction scope: calls inside join it; all-or-nothing.

        Raises ReadOnlyError on a read-only library, ClosedError once closed.
        """
        with self._write():
            yield

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        self._check_open()
        if self.read_only:
            raise ReadOnlyError("this library was opened read-only")
        with self._scope.write() as tx:
            yield tx

    @contextmanager
    def _read(self) -> Iterator[Session]:
        self._check_open()
        with self._scope.read() as session:
            yield session

    def _commit(self, tx: Transaction) -> None:
        self._vectors.commit(tx)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the library has been closed")
