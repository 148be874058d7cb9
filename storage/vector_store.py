"""The FAISS side of a library: loading the index file and checking it against SQLite,
applying committed changes, searching, and saving.

Invariant (writers): the in-memory index holds exactly the vectors committed in SQLite at
``generation`` (the ``vectors_generation`` meta value, bumped by every commit that changes
vectors). Two locks keep it so while queries run:

* ``lock`` (re-entrant) serialises what changes the index: "SQL commit + FAISS apply", saves
  and rebuilds, so the index moves from one committed state to the next;
* ``_use`` is shared by queries and taken alone only for the moment a change is applied or
  a rebuilt index swapped in. A save only reads the index, so queries go on while it writes
  (commits wait for it instead).

Saves write the whole index, but only when due: when the changes since the last save reach
the size the index had then (or on close, or asked for). Indexing N photos therefore writes
O(N) index bytes, not one index per batch.

A read-only store (a query process without the daemon) never builds anything from SQLite at
scale: a file behind the database is served as it is and ``stale`` says, in one line, what
refreshes it. Writers that find the file behind catch it up row by row (``index_build``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from . import index_build, index_file, meta, vector_rows
from .database import Transaction
from .index_file import IndexFileProblem
from .shared_lock import SharedLock
from .vector_changes import VectorChanges
from .vector_index import FLAT, IVF, IndexConfig, VectorIndex

ReadSession = Callable[[], AbstractContextManager[Session]]
REFRESH = "run `photosearch index` (or start `photosearch watch`) to refresh it"


class VectorStore:
    """FAISS index state of one library (``folder`` None: in memory, never saved)."""

    def __init__(self, folder: Path | None, config: IndexConfig, read: ReadSession, read_only: bool = False) -> None:
        self.folder = folder
        self.read_only = read_only  # map the saved index, never build or change it
        self.config = config
        self._read = read
        self.lock = threading.RLock()
        self._use = SharedLock()
        self.index: VectorIndex | None = None  # None while the library holds no vectors
        self.generation = 0
        self.dirty = False  # changed since the last save
        self.repair: str | None = None  # why the index was rebuilt or caught up on load (read-only: in memory)
        self.stale: str | None = None  # read-only: why answers may miss recent changes (one line)
        self._saved_count = 0  # vectors in the index at the last save
        self._unsaved = 0  # vector changes since the last save

    # -- loading -------------------------------------------------------------------------------
    def load(self) -> None:
        """Use the saved index; a writer repairs it from SQLite where it disagrees (``repair``
        then says why), a read-only store serves it as it is (``stale`` says so)."""
        if self.folder is None:
            self._rebuild()
            return
        with self._read() as session:
            generation = int(meta.get(session, meta.GENERATION, 0))
            count = vector_rows.count(session) if not self.read_only else None
        try:
            loaded = index_file.load(self.folder, self.config, read_only=self.read_only)
        except IndexFileProblem as exc:
            self._without_file(str(exc), generation)
            return
        if self.read_only:
            self.index, self.generation = loaded, generation  # as of this database generation
            if loaded.generation != generation:
                self.stale = (f"the search index was saved before the library's last "
                              f"{generation - loaded.generation} vector update(s), which answers may miss; {REFRESH}")
            return
        self.index, self.generation, self._saved_count = loaded, loaded.generation, loaded.count
        self.repair = self._disagreement(loaded, generation, count)
        if self.repair is not None:
            with self.lock:
                self._refresh()

    def _without_file(self, problem: str, generation: int) -> None:
        with self._read() as session:
            count = vector_rows.count(session)
        self.generation = generation
        if count == 0:
            return  # nothing saved, nothing to index
        if not self.read_only:
            self.repair = problem
            self._rebuild()
        elif count <= self.config.ivf_threshold:  # small: exact search over the rows, in memory
            self.repair = problem  # built in memory only; the next writer repairs the file
            with self._read() as session:
                self.index = index_build.build(session, self.config, kind=FLAT)
        else:
            self.stale = f"no usable search index ({problem}): searches find nothing; {REFRESH}"

    def _disagreement(self, loaded: VectorIndex, generation: int, count: int) -> str | None:
        if loaded.generation != generation:
            return f"stale (index file at generation {loaded.generation}, database at {generation})"
        if loaded.count != count:
            return f"out of sync ({loaded.count} vectors in the index file, {count} in SQLite)"
        return loaded.needs_rebuild()

    # -- keeping up with SQLite -------------------------------------------------------------
    def _refresh(self) -> None:
        """Under ``lock``: build the index afresh if its kind or lists no longer suit its size
        (or its dimension is not the database's), else apply what SQLite changed since it."""
        with self._read() as session:
            dim = meta.get(session, meta.VECTOR_DIM)
        index = self.index
        if index is None or index.dim != dim or index.needs_rebuild():
            self._rebuild()
            return
        with self._read() as session:
            for removed, upserts in index_build.differences(index, session):
                with self._use.exclusive():
                    index.apply(removed, upserts)
                self._unsaved += len(removed) + len(upserts)
            generation = int(meta.get(session, meta.GENERATION, 0))
        if index.needs_rebuild():
            self._rebuild()
            return
        index.generation = self.generation = generation
        self.dirty = True

    def _rebuild(self) -> None:
        """A fresh index from the SQLite rows, swapped in whole (queries use the old one until
        then); the build runs under ``lock``, so no commit lands in between."""
        with self.lock:
            with self._read() as session:
                built = index_build.build(session, self.config)
                generation = int(meta.get(session, meta.GENERATION, 0))
            with self._use.exclusive():
                self.index, self.generation, self.dirty = built, generation, True
            self._unsaved = self._saved_count + 1  # the next save is due

    # -- changes -----------------------------------------------------------------------------
    def commit(self, tx: Transaction) -> None:
        """Commit ``tx``; if it changed vectors, bump the generation and apply them to FAISS."""
        if not tx.vectors:
            tx.session.commit()
            return
        previous = int(meta.get(tx.session, meta.GENERATION, 0))
        meta.put(tx.session, meta.GENERATION, previous + 1)
        with self.lock:
            tx.session.commit()
            if previous != self.generation:  # another process changed vectors since we looked
                self._refresh()
                return
            with self._use.exclusive():
                self._apply(tx.vectors, previous + 1)
            if self.folder is None and self.index is not None and self.index.needs_rebuild():
                self._rebuild()  # in memory there is no save to do it at

    def _apply(self, changes: VectorChanges, generation: int) -> None:
        if changes.cleared:
            self.index = None
        if changes.upserts and self.index is None:
            vectors = np.stack(list(changes.upserts.values()))  # (n, D)
            kind = self.config.kind_for(len(vectors))
            self.index = (VectorIndex.empty_flat(vectors.shape[1], self.config) if kind == FLAT else
                          VectorIndex.untrained_ivf(vectors.shape[1], len(vectors), self.config, vectors))
        if self.index is not None:
            self.index.apply(changes.removed, changes.upserts)
            self.index.generation = generation
        self.generation = generation
        self.dirty = True
        self._unsaved += len(changes.removed) + len(changes.upserts) + changes.cleared

    def mismatch(self) -> str | None:
        """Why the in-memory index does not mirror SQLite's vectors (None when it does):
        same generation, the same ids, and each id's stored vector equal to its row."""
        with self.lock, self._read() as session:
            generation = int(meta.get(session, meta.GENERATION, 0))
            count = vector_rows.count(session)
            if generation != self.generation:
                return f"stale (index at generation {self.generation}, database at {generation})"
            if self.index is None:
                return f"no index but {count} vectors in the database" if count else None
            if self.index.count != count:
                return f"out of sync ({self.index.count} vectors in the index, {count} in the database)"
            for removed, upserts in index_build.differences(self.index, session):
                pid = int(removed[0]) if len(removed) else next(iter(upserts))
                return f"photo {pid}'s vector differs between the index and the database"
            return None

    # -- queries -------------------------------------------------------------------------
    def search(
        self, query: np.ndarray, k: int, allow: np.ndarray | None, deny: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        with self._use.shared():
            if self.index is None:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
            return self.index.search(query, k, allow, deny)

    def dim(self) -> int | None:
        index = self.index
        return None if index is None else index.dim

    def describe(self) -> dict[str, object]:
        index = self.index
        return {
            "index_type": None if index is None else index.kind,
            "index_entries": 0 if index is None else index.count,
            "index_lists": index.faiss_index.nlist if index is not None and index.kind == IVF else None,
            "generation": self.generation,
            "index_repair": self.repair,
            "index_stale": self.stale,
            "faiss_bytes": 0 if self.folder is None else index_file.index_bytes(self.folder),
        }

    # -- saving --------------------------------------------------------------------------
    def save(self, *, only_if_due: bool = False) -> bool:
        """Bring the index up to date and save it atomically; ``only_if_due``: only once the
        changes since the last save reach the index size then (see the module docstring).
        Returns whether it wrote. Queries go on meanwhile; commits wait."""
        if self.folder is None:
            return False
        with self.lock:
            if only_if_due and not (self.dirty and self._unsaved >= max(self._saved_count, 1)):
                return False
            with self._read() as session:
                generation = int(meta.get(session, meta.GENERATION, 0))
            if generation != self.generation or (self.index is not None and self.index.needs_rebuild()):
                self._refresh()
            if self.index is None:
                index_file.remove(self.folder)
            else:
                index_file.save(self.folder, self.index)
            self.dirty = False
            self._saved_count = 0 if self.index is None else self.index.count
            self._unsaved = 0
            return True
