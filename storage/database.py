"""The SQLite engine and the one explicit transaction scope.

Every public ``Library`` call runs inside a *transaction*: if the calling thread is already
inside ``lib.transaction()`` the call joins it, otherwise it opens its own short one. Writes
begin with ``BEGIN IMMEDIATE`` so concurrent writers queue on SQLite's busy timeout instead of
failing mid-transaction; reads begin a plain deferred transaction (a consistent WAL snapshot).
The "current transaction" is thread-local, so a query thread never joins the indexer thread's
open transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from .errors import StorageError
from .vector_changes import VectorChanges

BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another writer before "database is locked"


def make_engine(db_path: Path | None) -> Engine:
    """A SQLAlchemy engine for ``db_path`` (WAL, busy timeout, foreign keys), or in memory."""
    if db_path is None:
        # One shared connection: an in-memory database exists only inside its connection.
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        engine = create_engine(
            f"sqlite:///{db_path}",
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
    event.listen(engine, "connect", _configure_connection)
    event.listen(engine, "begin", _begin)
    return engine


def _configure_connection(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is too late
    # and never IMMEDIATE).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer (no-op in memory)
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cursor.close()


def _begin(conn) -> None:
    mode = conn.get_execution_options().get("photosearch_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


@dataclass
class Transaction:
    """An open write transaction: its session and the FAISS changes to apply on commit."""

    session: Session
    vectors: VectorChanges = field(default_factory=VectorChanges)


class TransactionScope:
    """Thread-local transaction that nested calls join; see the module docstring.

    ``commit`` is called with the finished :class:`Transaction` and must commit its session
    (the library uses it to bump the vector generation and apply FAISS changes atomically
    with the SQL commit). Any exception rolls the whole transaction back, FAISS included.
    """

    def __init__(self, engine: Engine, commit: Callable[[Transaction], None]) -> None:
        self._reads = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(
            engine.execution_options(photosearch_begin="IMMEDIATE"), expire_on_commit=False
        )
        self._commit = commit
        self._local = threading.local()

    def current(self) -> Transaction | None:
        return getattr(self._local, "tx", None)

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """Join the thread's open transaction, or run a new write transaction around the block."""
        tx = self.current()
        if tx is not None:
            with storage_errors():
                yield tx
            return
        with storage_errors(), self._writes() as session:
            tx = Transaction(session)
            self._local.tx = tx
            try:
                session.begin()
                yield tx
                self._commit(tx)
            except BaseException:
                session.rollback()
                raise
            finally:
                self._local.tx = None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session that sees a consistent snapshot (joins the thread's open transaction)."""
        tx = self.current()
        if tx is not None:
            with storage_errors():
                yield tx.session
            return
        with storage_errors(), self._reads.begin() as session:
            yield session


@contextmanager
def storage_errors() -> Iterator[None]:
    """Re-raise SQLAlchemy errors (locked, corrupt, not a database...) as StorageError."""
    try:
        yield
    except SQLAlchemyError as exc:
        # SQLite's own words ("database or disk is full"), not SQLAlchemy's full statement
        # and parameters, which can run to pages of vector bytes.
        reason = getattr(exc, "orig", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"library database error: {reason}") from exc
