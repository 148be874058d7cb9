"""The FAISS side of a library: loading and checking the index file against SQLite,
rebuilding it from the durable copy, applying committed changes, searching and saving.

Invariant: the in-memory index reflects exactly the vectors committed in SQLite at
``generation`` (the ``vectors_generation`` meta value, bumped by every commit that changes
vectors). All access goes through one re-entrant lock, held across "SQL commit + FAISS
apply" so that concurrent threads always see the index move from one committed state to
the next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from . import index_file, meta, vector_rows
from .database import Transaction
from .index_file import IndexFileProblem
from .vector_changes import VectorChanges
from .vector_index import IndexConfig, VectorIndex

ReadSession = Callable[[], AbstractContextManager[Session]]


class VectorStore:
    """FAISS index state of one library (``folder`` None: in memory, never saved)."""

    def __init__(self, folder: Path | None, config: IndexConfig, read: ReadSession, read_only: bool = False) -> None:
        self.folder = folder
        self.read_only = read_only  # map the saved index, check it lightly, never change it
        self.config = config
        self._read = read
        self.lock = threading.RLock()
        self.index: VectorIndex | None = None  # None while the library holds no vectors
        self.generation = 0
        self.dirty = False  # changed since the last save
        self.repair: str | None = None  # why the index file was rebuilt on load, if it was

    # -- loading and rebuilding ------------------------------------------------------------
    def load(self) -> None:
        """Use the saved index if it agrees with SQLite, else rebuild it from SQLite
        (``repair`` then says why)."""
        if self.folder is None:
            self.rebuild()
            return
        with self._read() as session:
            generation = int(meta.get(session, meta.GENERATION, 0))
            # A read-only open trusts the generation (each vector commit bumps it, and the
            # sidecar names the one the file holds); reading every id costs seconds at 1M.
            stored = None if self.read_only else vector_rows.all_ids(session)
        try:
            loaded = index_file.load(self.folder, self.config, read_only=self.read_only)
        except IndexFileProblem as exc:
            if str(exc) == "missing" and not self._holds_vectors(stored):
                self.generation = generation  # nothing saved, nothing to index
                return
            problem = str(exc)
        else:
            problem = self._disagreement(loaded, generation, stored)
            if problem is None:
                self.index, self.generation = loaded, generation
                return
        self.repair = problem
        self.rebuild()

    def _holds_vectors(self, stored: np.ndarray | None) -> bool:
        if stored is not None:
            return bool(stored.size)
        with self._read() as session:
            return vector_rows.any_rows(session)

    def _disagreement(self, loaded: VectorIndex, generation: int, stored: np.ndarray | None) -> str | None:
        if loaded.generation != generation:
            return f"stale (index file at generation {loaded.generation}, database at {generation})"
        with self._read() as session:
            dim = meta.get(session, meta.VECTOR_DIM)
        if loaded.count and loaded.dim != dim:
            return f"dimension {loaded.dim} differs from the database's {dim}"
        if stored is None:  # read-only: nothing below is checked, and nothing is rebuilt for it
            return None
        live = loaded.live_ids()
        if loaded.count != live.size or not np.array_equal(live, stored):
            return f"out of sync ({live.size} vectors in the index file, {stored.size} in SQLite)"
        if loaded.kind != self.config.kind_for(loaded.count):
            return f"index kind {loaded.kind} replaced by {self.config.kind_for(loaded.count)}"
        if loaded.needs_compaction():
            return f"compaction ({loaded.garbage} deleted or replaced entries)"
        return None

    def rebuild(self) -> None:
        """Rebuild the index from the durable SQLite copy (the slow build runs unlocked)."""
        with self._read() as session:
            generation = int(meta.get(session, meta.GENERATION, 0))
            ids, vectors = vector_rows.load_all(session)
        built = None
        if vectors is not None:
            built = VectorIndex.build(ids, vectors, self.config, generation)
        with self.lock:
            if generation >= self.generation:  # never go back to an older snapshot
                self.index, self.generation, self.dirty = built, generation, True

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
            in_step = previous == self.generation
            if in_step:
                self._apply(tx.vectors, previous + 1)
        if not in_step:  # another process changed vectors since we loaded: reload them all
            self.rebuild()

    def _apply(self, changes: VectorChanges, generation: int) -> None:
        if changes.cleared:
            self.index = None
        if changes.upserts and self.index is None:
            dim = next(iter(changes.upserts.values())).shape[0]
            kind = self.config.kind_for(len(changes.upserts))
            self.index = VectorIndex.empty(dim, kind, self.config)
        if self.index is not None:
            self.index.apply(changes.removed, changes.upserts)
            self.index.generation = generation
        self.generation = generation
        self.dirty = True

    def mismatch(self) -> str | None:
        """Why the in-memory index does not mirror SQLite's vectors (None when it does):
        same generation, the same ids, and each id's newest FAISS entry equal to its row."""
        with self.lock:
            with self._read() as session:
                generation = int(meta.get(session, meta.GENERATION, 0))
                ids, vectors = vector_rows.load_all(session)
            if generation != self.generation:
                return f"stale (index at generation {self.generation}, database at {generation})"
            if self.index is None:
                return f"no index but {ids.size} vectors in the database" if ids.size else None
            live = self.index.live_ids()
            if not np.array_equal(live, ids):
                return f"out of sync ({live.size} vectors in the index, {ids.size} in the database)"
            for pid, vector in zip(ids.tolist(), vectors if vectors is not None else ()):
                if not np.array_equal(self.index.faiss_index.reconstruct(pid), vector):
                    return f"photo {pid}'s vector differs between the index and the database"
            return None

    # -- queries -------------------------------------------------------------------------
    def search(
        self, query: np.ndarray, k: int, allow: np.ndarray | None, deny: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            if self.index is None:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
            return self.index.search(query, k, allow, deny)

    def dim(self) -> int | None:
        with self.lock:
            return None if self.index is None else self.index.dim

    def describe(self) -> dict[str, object]:
        with self.lock:
            index = self.index
            return {
                "index_type": None if index is None else index.kind,
                "index_entries": 0 if index is None else index.faiss_index.ntotal,
                "index_garbage": 0 if index is None else index.garbage,
                "generation": self.generation,
                "index_repair": self.repair,
                "faiss_bytes": 0 if self.folder is None else index_file.index_bytes(self.folder),
            }

    # -- saving --------------------------------------------------------------------------
    def save(self) -> None:
        """Bring the index up to date (stale, kind change, compaction) and save it atomically."""
        if self.folder is None:
            return
        if self._rebuild_reason() is not None:
            self.rebuild()
        with self.lock:
            if self.index is None:
                index_file.remove(self.folder)
            else:
                index_file.save(self.folder, self.index)
            self.dirty = False

    def _rebuild_reason(self) -> str | None:
        with self.lock:  # commits hold the lock, so only another process can make this stale
            with self._read() as session:
                generation = int(meta.get(session, meta.GENERATION, 0))
            index = self.index
            if generation != self.generation:
                return "stale"
            if index is not None and index.kind != self.config.kind_for(index.count):
                return "kind"
            if index is not None and index.needs_compaction():
                return "compaction"
            return None
