"""Reconciling folder trees on disk with the library.

One reconciliation compares what is on disk with what the library knows about the same
paths and settles every difference:

- unchanged (same size and mtime): nothing is read, nothing is embedded;
- changed: re-fingerprinted; re-embedded only if the content really changed;
- new: fingerprinted first; a fingerprint that belongs to an indexed photo whose file is
  gone is a *move* (`lib.move`, vector kept), one whose file is still there is a copy
  (its vector is reused), anything else is embedded;
- gone: removed, after new files had their chance to claim them as moves;
- unreadable: recorded as failed with the reason, never stopping the run. Photos inside a
  folder that could not be listed are left alone rather than removed;
- deleted while we looked (between the walk, or the watcher's event, and the read): not a
  failure, just gone.

A root that does not exist (an unmounted drive), or exists but is empty while the library
has photos under it (an empty mount point), is *missing*: its photos are kept with status
missing and come back, without re-embedding, when the root does. A root that goes away
during the scan is treated the same way, never as "every photo was deleted".
Which files count as photos, and the walk itself, live in `indexer.folders`.

Embedding goes in batches; each batch's rows and vectors are written in one
`lib.transaction()`, and the FAISS index is saved every `save_every` batches and at the end,
so a crash loses at most one batch and the next scan simply continues.

`scan` is the full walk; the watcher drives the same machinery through `sync_paths` (a
handful of created/changed/deleted paths) and `move_path` (a rename it saw happen).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

from photosearch.storage import INDEXED, MISSING, IndexSaveError, Library, PhotoRecord

from photosearch.indexer.embedder import Embedder
from photosearch.indexer.fingerprint import file_fingerprint
from photosearch.indexer.folders import (
    DiskFile, is_under, library_filter, looks_unmounted, os_error_reason, walk_photos,
)
from photosearch.indexer.model_guard import MODEL_META_KEY, ModelMismatchError, check_model  # noqa: F401

log = logging.getLogger(__name__)
ProgressCallback = Callable[[int, int], None]  # (files settled so far, files seen in total)


@dataclass
class ScanReport:
    """What a reconciliation did; `failures` holds (path, reason) for files and folders."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    failed: int = 0  # files that could not be indexed, and folders that could not be read
    unchanged: int = 0
    missing: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False  # stopped early on request; the rest is left for the next run

    def fail(self, path: str, reason: str) -> None:
        self.failed += 1
        self.failures.append((path, reason))


class Scanner:
    """Brings the library in line with the disk, embedding only what is new or changed."""

    def __init__(
        self,
        lib: Library,
        embedder: Embedder,
        *,
        exclude: Iterable[str] = (),
        batch_size: int = 32,
        save_every: int = 20,
        hash_workers: int = 4,
        on_progress: ProgressCallback | None = None,
    ):
        self.lib = lib
        self.embedder = embedder
        self.path_filter = library_filter(getattr(lib, "folder", None), exclude)
        self.batch_size = batch_size
        self.save_every = save_every  # batches between FAISS saves (vectors are in SQLite anyway)
        self.hash_workers = hash_workers
        self.on_progress = on_progress
        self._batches = 0
        self._done = self._total = 0
        self._stop: threading.Event | None = None
        self._model_checked = False

    def scan(
        self, roots: Iterable[str | os.PathLike] | None = None, stop: threading.Event | None = None
    ) -> ScanReport:
        """Reconcile each root (default: the library's registered roots) with the disk.

        Setting `stop` ends the scan after the batch in flight (`report.interrupted`);
        everything committed so far stays, and removals wait for a complete scan.
        """
        self._check_model()
        self._stop = stop
        if roots is None:
            roots = [root.path for root in self.lib.roots()]
        report, plans, scanned = ScanReport(), [], []
        for root in (os.path.abspath(r) for r in roots):
            known = {record.path: record for record in self.lib.photos_under(root)}
            if looks_unmounted(root) and known:
                self.lib.mark_missing_under(root)
                report.missing += len(known)
                continue
            if not os.path.isdir(root):
                report.fail(root, "folder not found")
                continue
            if any(record.status == MISSING for record in known.values()):
                self.lib.mark_present_under(root)
                known = {record.path: record for record in self.lib.photos_under(root)}
            errors: list[str] = []
            disk = list(walk_photos(root, self.path_filter, _collect(report, errors)))
            plans.append((disk, known, errors))
            scanned.append(root)
        self._start_progress(sum(len(disk) for disk, _, _ in plans))
        try:
            vanished: dict[str, PhotoRecord] = {}
            for disk, known, errors in plans:
                vanished.update(self._reconcile(disk, known, errors, report))
            # A drive unplugged during the scan: its photos are kept as missing, not removed.
            unplugged = [r for r in scanned if looks_unmounted(r) and self.lib.photos_under(r)]
            for root in unplugged:
                report.missing += self.lib.mark_missing_under(root)
            self._remove(vanished, report, keep_under=unplugged)  # after all roots claimed moves
        finally:
            self._stop = None
            self.lib.save_index()
        return report

    def sync_paths(self, paths: Iterable[str | os.PathLike]) -> ScanReport:
        """Reconcile just these paths (files or folders, existing or not); for the watcher.

        The FAISS index is not saved here (the caller decides when); vectors are durable in
        the database as soon as each batch commits.
        """
        self._check_model()
        report, errors = ScanReport(), []
        disk: dict[str, DiskFile] = {}
        known: dict[str, PhotoRecord] = {}
        roots = [root.path for root in self.lib.roots()]
        for path in sorted({os.path.abspath(p) for p in paths}):
            if os.path.isdir(path):
                root = next((r for r in roots if is_under(path, r)), None)
                for found in walk_photos(path, self.path_filter, _collect(report, errors), root):
                    disk[found.path] = found
            elif os.path.isfile(path) and self._accepts(path, roots):
                try:
                    st = os.stat(path)
                    disk[path] = DiskFile(path, st.st_size, st.st_mtime)
                except FileNotFoundError:
                    pass  # deleted since its event: it is simply gone
                except OSError as exc:
                    _collect(report, errors)(path, os_error_reason(exc))
            record = self.lib.get_by_path(path)
            known.update({record.path: record} if record else {})
            if not os.path.isfile(path):  # a folder, or a deleted path that may have been one
                known.update((r.path, r) for r in self.lib.photos_under(path))
        self._start_progress(len(disk))
        vanished = self._reconcile(list(disk.values()), known, errors, report)
        unplugged = [root for root in roots if not os.path.isdir(root)]
        self._remove(vanished, report, keep_under=unplugged)
        return report

    def move_path(self, src: str | os.PathLike, dest: str | os.PathLike) -> ScanReport:
        """Apply a rename seen by the watcher: the photo (or a folder's photos) keep vectors.

        Photos whose new name is not indexable (`a.jpg` -> `a.jpg.bak`) are removed; a photo
        that the rename overwrote is forgotten. Nothing is read from disk here.
        """
        src, dest = os.path.abspath(src), os.path.abspath(dest)
        report = ScanReport()
        record = self.lib.get_by_path(src)
        if record is not None:
            pairs = [(record, dest)]
        else:
            pairs = [(r, dest + r.path[len(src):]) for r in self.lib.photos_under(src)]
        roots = [root.path for root in self.lib.roots()]
        with self.lib.transaction():
            for record, new_path in pairs:
                if not self._accepts(new_path, roots):
                    self.lib.remove(record.id)
                    report.removed += 1
                    continue
                occupant = self.lib.get_by_path(new_path)
                if occupant is not None and occupant.id != record.id:
                    self.lib.remove(occupant.id)
                self.lib.move(record.id, new_path)
                report.moved += 1
        return report

    # -- reconciliation ----------------------------------------------------------------------
    def _reconcile(self, disk, known: dict[str, PhotoRecord], errors: list[str], report):
        """Settle every file in `disk`; return the known photos that are gone (not removed yet)."""
        known = dict(known)
        todo = []
        for found in disk:
            record = known.pop(found.path, None)
            if record is not None and _unchanged(record, found):
                report.unchanged += 1
                self._advance(1)
            else:
                todo.append((found, record))
        # Gone from disk, unless hidden behind a read error; new files may claim them as moves.
        vanished = {p: r for p, r in known.items() if not any(is_under(p, e) for e in errors)}
        waiting: dict[str, tuple[DiskFile, PhotoRecord | None, str]] = {}
        with ThreadPoolExecutor(self.hash_workers, thread_name_prefix="fingerprint") as pool:
            # The embedder pulls paths lazily from _settle, so fingerprinting the next chunk
            # and decoding overlap with the model and the database writes of this one.
            to_embed = self._settle(todo, pool, vanished, waiting, report)
            for embedded, failed in self.embedder.embed_batches(to_embed):
                self._store_batch(embedded, failed, waiting, vanished, report)
        return vanished

    def _remove(self, vanished: dict[str, PhotoRecord], report: ScanReport, keep_under=()) -> None:
        """Forget photos whose files are gone, unless stopped early, claimed as a move, or
        inside a root that is itself gone (`keep_under`: an unplugged drive)."""
        if self._stopping():
            report.interrupted = True
            return
        with self.lib.transaction():
            for record in vanished.values():
                if any(is_under(record.path, root) for root in keep_under):
                    continue
                current = self.lib.get(record.id)
                if current is not None and current.path == record.path:
                    self.lib.remove(record.id)
                    report.removed += 1

    def _settle(self, todo, pool, vanished, waiting, report) -> Iterator[str]:
        """Fingerprint chunk by chunk; apply touches, moves, copies and read failures (one
        transaction per chunk) and yield the paths that still need the model."""
        for start in range(0, len(todo), self.batch_size):
            if self._stopping():
                return
            chunk = todo[start : start + self.batch_size]
            hashes = list(pool.map(_try_fingerprint, [found.path for found, _ in chunk]))
            needs_model = []
            with self.lib.transaction():
                for (found, record), (fingerprint, error) in zip(chunk, hashes):
                    if error is not None and _gone(found.path):
                        _forget_later(found, record, vanished)
                    elif error is not None:
                        self._fail(found, record.fingerprint if record else "", error, report)
                    elif not self._without_model(found, record, fingerprint, vanished, report):
                        waiting[found.path] = (found, record, fingerprint)
                        needs_model.append(found.path)
            self._advance(len(chunk) - len(needs_model))
            yield from needs_model

    def _without_model(self, found, record, fingerprint, vanished, report) -> bool:
        """Touched (same content), moved, or a copy of an indexed photo: no embedding."""
        if record is not None and record.status == INDEXED and record.fingerprint == fingerprint:
            self.lib.update_photo(replace(record, size=found.size, mtime=found.mtime))
            report.unchanged += 1
            return True
        candidates = [c for c in self.lib.find_by_fingerprint(fingerprint) if c.status == INDEXED]
        for candidate in candidates if record is None else ():
            # Its old path vanished in this walk, or it lived elsewhere and is gone: a move.
            if vanished.pop(candidate.path, None) or not os.path.lexists(candidate.path):
                self.lib.move(candidate.id, found.path)
                self.lib.update_photo(
                    replace(candidate, path=found.path, size=found.size, mtime=found.mtime)
                )
                report.moved += 1
                return True
        for candidate in candidates:
            vector = self.lib.get_vector(candidate.id)
            if candidate.model_fingerprint == self.embedder.fingerprint and vector is not None:
                pid = self.lib.add_photo(_record(found, fingerprint, candidate))
                self.lib.set_vectors({pid: vector})  # an identical copy: same vector
                _count_new(report, record)
                return True
        return False

    def _store_batch(self, embedded, failed, waiting, vanished, report) -> None:
        """One model batch: its rows and vectors (and its failures) in one transaction.

        A file deleted since it was fingerprinted is not a failure: it joins `vanished`.
        """
        with self.lib.transaction():
            vectors = {}
            for path, photo in embedded.items():
                found, record, fingerprint = waiting.pop(path)
                row = _record(found, fingerprint, photo, self.embedder.fingerprint)
                pid = self.lib.add_photo(row)
                vectors[pid] = photo.vector
                _count_new(report, record)
            for path, reason in failed.items():
                found, record, fingerprint = waiting.pop(path)
                if _gone(path):
                    _forget_later(found, record, vanished)
                else:
                    self._fail(found, fingerprint, reason, report)
            self.lib.set_vectors(vectors)
        self._advance(len(embedded) + len(failed))
        self._batches += 1
        if self._batches % self.save_every == 0:
            try:
                self.lib.save_index()
            except IndexSaveError as exc:  # e.g. disk full: the vectors are safe in SQLite
                log.warning("%s", exc)

    def _accepts(self, path: str, roots: list[str]) -> bool:
        root = next((r for r in roots if is_under(path, r)), None)
        return self.path_filter.accepts_file(path, root)

    def _check_model(self) -> None:
        if not self._model_checked:
            check_model(self.lib, self.embedder.fingerprint)
            self._model_checked = True

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _fail(self, found: DiskFile, fingerprint: str, reason: str, report: ScanReport) -> None:
        self.lib.mark_failed(found.path, reason, found.size, found.mtime, fingerprint)
        report.fail(found.path, reason)

    def _start_progress(self, total: int) -> None:
        self._done, self._total = 0, total
        self._advance(0)

    def _advance(self, n: int) -> None:
        self._done += n
        if self.on_progress is not None:
            self.on_progress(self._done, self._total)


def _record(found: DiskFile, fingerprint: str, photo, model_fingerprint: str | None = None):
    """A fresh pending row for `found`, with size/time facts from an embedding or a twin."""
    return PhotoRecord(
        path=found.path, size=found.size, mtime=found.mtime, fingerprint=fingerprint,
        width=photo.width, height=photo.height, taken_at=photo.taken_at,
        model_fingerprint=model_fingerprint or getattr(photo, "model_fingerprint", None),
    )


def _count_new(report: ScanReport, record: PhotoRecord | None) -> None:
    if record is None:
        report.added += 1
    else:
        report.updated += 1


def _unchanged(record: PhotoRecord, found: DiskFile) -> bool:
    return record.status == INDEXED and record.size == found.size and record.mtime == found.mtime


def _try_fingerprint(path: str) -> tuple[str | None, str | None]:
    try:
        return file_fingerprint(path), None
    except OSError as exc:
        return None, os_error_reason(exc)


def _gone(path: str) -> bool:
    """Deleted (or moved away) after the walk saw it: not a failure, just not there."""
    return not os.path.lexists(path)


def _forget_later(found: DiskFile, record: PhotoRecord | None, vanished: dict) -> None:
    """A known photo whose file went away mid-reconciliation is removed with the other
    vanished ones (or claimed as a move); a new one is simply never added."""
    if record is not None:
        vanished[found.path] = record


def _collect(report: ScanReport, errors: list[str]) -> Callable[[str, str], None]:
    """A walk error handler that records the failure and remembers the path as unreadable."""

    def on_error(path: str, reason: str) -> None:
        errors.append(path)
        report.fail(path, reason)

    return on_error
