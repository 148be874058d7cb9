"""The tag half of ``Library``: each photo's automatic tags, and the counts of each tag.

``TagMethods`` is mixed into ``storage.library.Library``; each method runs in the caller's
``lib.transaction()`` if one is open, else in its own. The SQL lives in ``storage.tags``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from . import tags
from .library_core import LibraryCore


class TagMethods(LibraryCore):
    """Automatic tags of a ``Library``'s photos."""

    def set_tags(self, photo_tags: Mapping[int, tags.Tags]) -> None:
        """Photo id -> [(name, probability)]: replaces those photos' tags (an empty list clears
        them). Names are stored lower case."""
        if not photo_tags:
            return
        with self._write() as tx:
            tags.replace(tx.session, photo_tags)

    def copy_tags(self, source: int, target: int) -> None:
        """Photo ``target`` (a byte-identical copy of ``source``) gets ``source``'s tags."""
        with self._write() as tx:
            tags.replace(tx.session, {target: tags.of(tx.session, [source]).get(source, [])})

    def tags_of(self, ids: Iterable[int]) -> dict[int, tags.Tags]:
        """Photo id -> its tags, most probable first; photos without tags are left out."""
        with self._read() as session:
            return tags.of(session, ids)

    def tag_counts(self) -> list[tuple[str, int]]:
        """(tag, indexed photos with it), most common first."""
        with self._read() as session:
            return tags.counts(session)
