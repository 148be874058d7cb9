"""What the indexer saw in each photo's pixels, in ``Library``: its automatic tags (and the
counts of each tag), and its perceptual hash.

``TagMethods`` is mixed into ``storage.library.Library``; each method runs in the caller's
``lib.transaction()`` if one is open, else in its own. The SQL lives in ``storage.tags`` and
``storage.hashes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from . import hashes, tags
from .library_core import LibraryCore


class TagMethods(LibraryCore):
    """Automatic tags and perceptual hashes of a ``Library``'s photos."""

    def set_tags(self, photo_tags: Mapping[int, tags.Tags]) -> None:
        """Photo id -> [(name, probability)]: replaces those photos' tags (an empty list clears
        them). Names are stored lower case."""
        if not photo_tags:
            return
        with self._write() as tx:
            tags.replace(tx.session, photo_tags)

    def set_hashes(self, photo_hashes: Mapping[int, int | None]) -> None:
        """Photo id -> its perceptual hash (signed 64-bit int), replacing any it had."""
        if not photo_hashes:
            return
        with self._write() as tx:
            hashes.replace(tx.session, photo_hashes)

    def copy_tags_and_hash(self, source: int, target: int) -> None:
        """Photo ``target`` (a byte-identical copy of ``source``) gets ``source``'s tags and hash."""
        with self._write() as tx:
            tags.replace(tx.session, {target: tags.of(tx.session, [source]).get(source, [])})
            hashes.replace(tx.session, {target: hashes.of(tx.session, [source]).get(source)})

    def hashes_of(self, ids: Iterable[int]) -> dict[int, int]:
        """Photo id -> its perceptual hash, for the photos that have one."""
        with self._read() as session:
            return hashes.of(session, ids)

    def count_unhashed(self) -> int:
        """Indexed photos without a perceptual hash (indexed before it existed: `reindex`)."""
        with self._read() as session:
            return hashes.count_missing(session)

    def tags_of(self, ids: Iterable[int]) -> dict[int, tags.Tags]:
        """Photo id -> its tags, most probable first; photos without tags are left out."""
        with self._read() as session:
            return tags.of(session, ids)

    def tag_counts(self) -> list[tuple[str, int]]:
        """(tag, indexed photos with it), most common first."""
        with self._read() as session:
            return tags.counts(session)
