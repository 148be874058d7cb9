"""The row half of ``Library``: photos (add, look up, move, remove, mark failed or missing),
watched roots, and meta values.

``PhotoMethods`` is mixed into ``storage.library.Library``; each method runs in the caller's
``lib.transaction()`` if one is open, else in its own. The SQL itself lives in
``storage.photos``, ``storage.roots`` and ``storage.meta``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from . import meta, photos, roots, vector_rows
from .errors import StorageError
from .library_core import LibraryCore, PathLike
from .records import FAILED, STATUSES, PhotoRecord, RootRecord


class PhotoMethods(LibraryCore):
    """Photos, roots and meta of a ``Library``."""

    # -- photos ------------------------------------------------------------------------------
    def add_photo(self, record: PhotoRecord) -> int:
        """Insert ``record``, or overwrite the photo stored at the same path; return its id.
        Its vector, if any, is kept (``set_vectors`` replaces it)."""
        return self.add_photos([record])[0]

    def add_photos(self, records: Iterable[PhotoRecord]) -> list[int]:
        """``add_photo`` for a batch, in bulk statements; ids in the order given."""
        with self._write() as tx:
            return photos.upsert_many(tx.session, records)

    def update_photo(self, record: PhotoRecord) -> PhotoRecord:
        """Overwrite the photo ``record.id`` (or the one at ``record.path`` if id is None)."""
        with self._write() as tx:
            return photos.overwrite(tx.session, record)

    def get(self, pid: int) -> PhotoRecord | None:
        """The photo with id ``pid``, or None."""
        with self._read() as session:
            return photos.get(session, pid)

    def get_by_path(self, path: PathLike) -> PhotoRecord | None:
        """The photo stored at exactly ``path`` (compared as given, not normalised), or None."""
        with self._read() as session:
            return photos.get_by_path(session, os.fspath(path))

    def find_by_fingerprint(self, fingerprint: str) -> list[PhotoRecord]:
        """Every photo with this content fingerprint (copies, or a moved file's old entry)."""
        with self._read() as session:
            return photos.with_fingerprint(session, fingerprint)

    def photos_under(self, root: PathLike) -> list[PhotoRecord]:
        """Every photo inside folder ``root`` (any status), by path."""
        with self._read() as session:
            return photos.under(session, root)

    def photos_by_status(self, status: str) -> list[PhotoRecord]:
        """E.g. ``photos_by_status("pending")`` or ``("failed")``, by path."""
        if status not in STATUSES:
            raise StorageError(f"unknown status {status!r}; expected one of {STATUSES}")
        with self._read() as session:
            return photos.with_status(session, status)

    def move(self, pid: int, new_path: PathLike) -> PhotoRecord:
        """Change a photo's path, keeping its vector; PathConflictError if the path is taken."""
        new_path = os.fspath(new_path)
        with self._write() as tx:
            record = photos.require(tx.session, pid)
            photos.ensure_path_free(tx.session, new_path, pid)
            photos.set_fields(tx.session, pid, path=new_path)
            return replace(record, path=new_path)

    def remove(self, pid: int) -> bool:
        """Forget a photo and its vector; False if there was no such photo."""
        with self._write() as tx:
            if vector_rows.delete_one(tx.session, pid):
                tx.vectors.remove(pid, had_vector=True)
            return photos.delete(tx.session, pid)

    def mark_failed(
        self, path: PathLike, error: str, size: int, mtime: float, fingerprint: str, **fields: Any
    ) -> int:
        """Record that ``path`` could not be indexed (and drop any old vector); return its id.
        ``fields``: further PhotoRecord fields (width, height, taken_at...)."""
        record = PhotoRecord(
            path=os.fspath(path), size=size, mtime=mtime, fingerprint=fingerprint,
            **fields, status=FAILED, error=error,
        )
        with self._write() as tx:
            (pid,) = photos.upsert_many(tx.session, [record])
            if vector_rows.delete_one(tx.session, pid):
                tx.vectors.remove(pid, had_vector=True)
            return pid

    def mark_missing_under(self, root: PathLike) -> int:
        """Root unmounted or gone: hide its photos (kept, with vectors); return how many."""
        with self._write() as tx:
            roots.set_present(tx.session, roots.normalise(root), False)
            return photos.hide_under(tx.session, os.fspath(root))

    def mark_present_under(self, root: PathLike) -> int:
        """Root is back: restore its missing photos' previous status; return how many."""
        with self._write() as tx:
            roots.set_present(tx.session, roots.normalise(root), True)
            return photos.unhide_under(tx.session, os.fspath(root))

    # -- roots and meta ----------------------------------------------------------------------
    def add_root(self, path: PathLike) -> RootRecord:
        """Register folder ``path`` by its real path (symlinks and ``..`` resolved) and return
        the root that covers it: an existing root that is the same folder or holds it is
        returned as is; existing roots inside it are merged into the new one."""
        with self._write() as tx:
            return roots.add(tx.session, roots.canonical(path))

    def remove_root(self, path: PathLike) -> bool:
        """Stop watching ``path`` (as registered, or by its real path); its photos stay."""
        with self._write() as tx:
            return roots.remove(tx.session, roots.normalise(path)) or roots.remove(
                tx.session, roots.canonical(path)
            )

    def roots(self) -> list[RootRecord]:
        """The registered roots, by path."""
        with self._read() as session:
            return roots.all_roots(session)

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default``."""
        with self._read() as session:
            return meta.get(session, key, default)

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value (e.g. the model fingerprint) under ``key``."""
        if key in meta.RESERVED:
            raise StorageError(f"meta key {key!r} is maintained by storage itself")
        with self._write() as tx:
            meta.put(tx.session, key, value)
