"""What one reconciliation knows about the photos sharing a content fingerprint.

A new file whose fingerprint is already in the library is a *move* (an indexed photo with
that content whose file is gone) or a *copy* (its vector is reused). Looking that up from
scratch for every file costs O(copies) rows and `lstat` calls, so N identical files cost
O(N²). `Copies` looks each fingerprint up once per reconciliation and remembers the answer:
the photos that could still be moves, and one *donor* whose vector copies reuse. Photos
embedded during the reconciliation become donors as they are stored (`learn`).
"""

from __future__ import annotations

import os

import numpy as np

from photosearch.storage import INDEXED, Library, PhotoRecord


class Copies:
    """Per-reconciliation memo: fingerprint -> move candidates, and a donor for copies."""

    def __init__(self, lib: Library, model_fingerprint: str):
        self.lib = lib
        self.model_fingerprint = model_fingerprint
        self._movable: dict[str, list[PhotoRecord]] = {}
        self._donors: dict[str, tuple[PhotoRecord, np.ndarray] | None] = {}
        self.lookups = 0  # fingerprints looked up in the library (for tests)

    def claim_move(self, fingerprint: str, vanished: dict[str, PhotoRecord]) -> PhotoRecord | None:
        """An indexed photo with this content whose file vanished in this walk (taken out of
        `vanished`) or is gone from disk, or None. Each photo is claimed at most once."""
        self._load(fingerprint, vanished)
        movable = self._movable[fingerprint]
        while movable:
            candidate = movable.pop()
            if vanished.pop(candidate.path, None) or not os.path.lexists(candidate.path):
                return candidate
        return None

    def donor(
        self, fingerprint: str, vanished: dict[str, PhotoRecord]
    ) -> tuple[PhotoRecord, np.ndarray] | None:
        """An indexed photo with this content, embedded by this model, and its vector."""
        self._load(fingerprint, vanished)
        return self._donors[fingerprint]

    def learn(self, record: PhotoRecord, vector: np.ndarray) -> None:
        """`record` was just embedded and stored: later copies of it reuse `vector`."""
        if self._donors.get(record.fingerprint) is None:
            self._donors[record.fingerprint] = (record, vector)

    def _load(self, fingerprint: str, vanished: dict[str, PhotoRecord]) -> None:
        if fingerprint in self._movable:
            return
        self.lookups += 1
        candidates = [
            c for c in self.lib.find_by_fingerprint(fingerprint) if c.status == INDEXED
        ]
        # Reversed, so that `claim_move` pops them in path order.
        self._movable[fingerprint] = [
            c for c in reversed(candidates)
            if c.path in vanished or not os.path.lexists(c.path)
        ]
        if self._donors.get(fingerprint) is None:
            self._donors[fingerprint] = self._find_donor(candidates)

    def _find_donor(self, candidates: list[PhotoRecord]):
        for candidate in candidates:
            if candidate.model_fingerprint != self.model_fingerprint:
                continue
            vector = self.lib.get_vector(candidate.id)
            if vector is not None:
                return candidate, vector
        return None
