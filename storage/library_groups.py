"""The duplicates half of ``Library``: photos that hold the same content, byte for byte, and
pairs of photos whose vectors are nearly the same (resized, re-encoded, lightly edited).

``GroupMethods`` is mixed into ``storage.library.Library``. The SQL lives in
``storage.photos``, the vector search in ``storage.neighbours``.
"""

from __future__ import annotations

import numpy as np

from . import neighbours, photos
from .library_core import LibraryCore
from .records import PhotoRecord


class GroupMethods(LibraryCore):
    """Exact copies and near-identical pairs among a ``Library``'s indexed photos."""

    def get_many(self, ids) -> dict[int, PhotoRecord]:
        """Photo id -> record, for the ids that exist."""
        with self._read() as session:
            return photos.get_many(session, ids)

    def copy_groups(self) -> list[list[PhotoRecord]]:
        """Indexed photos with the same content fingerprint, one list (by path) per content."""
        with self._read() as session:
            return photos.copy_groups(session)

    def near_pairs(self, min_cosine: float, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, cosine) arrays: pairs of indexed photos of different content whose vectors'
        cosine is >= ``min_cosine``, b among a's ``k`` nearest or a among b's; a < b. One photo
        stands for each content (the smallest id): its copies are ``copy_groups``."""
        self._check_open()
        with self._read() as session:
            wanted = photos.one_id_per_content(session)
        with self._vectors.lock:  # the vector view is valid while the index does not change
            index = self._vectors.index
            if index is None or wanted.size < 2:
                ids, vectors = wanted[:0], np.zeros((0, 0), dtype=np.float32)
            else:
                ids, vectors = neighbours.stored_vectors(index, wanted)
        return neighbours.near_pairs(ids, vectors, min_cosine, k)
