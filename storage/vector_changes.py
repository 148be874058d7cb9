"""FAISS edits made inside a transaction, kept aside until its SQL commit succeeds.

SQLite is the durable truth; the FAISS index mirrors the *committed* vectors. A transaction
records its vector edits here and the library applies them to FAISS right after the commit
(under the index lock), or drops them on rollback, so FAISS never sees uncommitted data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class VectorChanges:
    """Net effect of a transaction on the committed vector set.

    ``removed`` holds ids whose committed vector must leave FAISS (deleted or replaced);
    ``upserts`` the final vector of every id written in this transaction. ``cleared`` means
    the whole index was dropped first (``clear_vectors``).
    """

    cleared: bool = False
    removed: set[int] = field(default_factory=set)
    upserts: dict[int, np.ndarray] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.cleared or bool(self.removed) or bool(self.upserts)

    def upsert(self, pid: int, vector: np.ndarray, had_vector: bool) -> None:
        """Record ``vector`` for ``pid``; ``had_vector``: SQLite held a vector for it just now."""
        if pid not in self.upserts and had_vector and not self.cleared:
            self.removed.add(pid)  # the committed vector is replaced
        self.upserts[pid] = vector

    def remove(self, pid: int, had_vector: bool) -> None:
        """Record the deletion of ``pid``'s vector (same ``had_vector`` meaning as above)."""
        if self.upserts.pop(pid, None) is not None:
            return  # written in this transaction; if it replaced a committed one, already removed
        if had_vector and not self.cleared:
            self.removed.add(pid)

    def clear(self) -> None:
        self.cleared = True
        self.removed.clear()
        self.upserts.clear()
