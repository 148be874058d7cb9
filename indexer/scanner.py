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
Which files count as photos, and the walk itself, live in `indexer.folders`; the library
writes that settle each file, and `ScanReport`, in `indexer.scan_outcomes`.

Embedding goes in batches; each batch's rows and vectors are written in one
`lib.transaction()`; every `save_every` batches the FAISS index is saved if due (once the
changes since its last save reach its size then: O(N) bytes for N photos, not one index per
batch), and always at the end. A crash loses at most one batch; the next writer catches the
index file up from SQLite and the next scan simply continues.

`scan` is the full walk; the watcher drives the same machinery through `sync_paths` (a
handful of created/changed/deleted paths) and `move_path` (a rename it saw happen).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from photosearch.storage import INDEXED, MISSING, IndexSaveError, Library, PhotoRecord, StorageError, storage_fault

from photosearch.indexer.copies import Copies
from photosearch.indexer.embedder import Embedder
from photosearch.indexer.fingerprint import file_fingerprint
from photosearch.indexer.folders import (
    DiskFile, is_under, library_filter, looks_unmounted, os_error_reason, walk_photos,
)
from photosearch.indexer.model_guard import MODEL_META_KEY, ModelMismatchError, check_model  # noqa: F401
from photosearch.indexer.root_folders import scan_roots, settle_roots
from photosearch.indexer.scan_outcomes import (
    ScanReport, Waiting, apply_rename, forget_later, gone, record_failure, remove_vanished,
    settle_without_model, store_embedded, walk_error_recorder,
)
from photosearch.indexer.write_faults import WriteFault

log = logging.getLogger(__name__)
ProgressCallback = Callable[[int, int], None]  # (files settled so far, files seen in total)


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
        self.save_every = save_every  # batches between "save if due" checks (vectors are in SQLite anyway)
        self.hash_workers = hash_workers
        self.on_progress = on_progress
        self._batches = 0
        self._save_failure: str | None = None  # the last periodic save's error, said once
        self._done = self._total = 0
        self._stop: threading.Event | None = None
        self._model_checked = False

    def scan(
        self, roots: Iterable[str | os.PathLike] | None = None, stop: threading.Event | None = None
    ) -> ScanReport:
        """Reconcile each root (default: the library's registered roots) with the disk.

        Setting `stop` ends the scan after the batch in flight (`report.interrupted`);
        everything committed so far stays, and removals wait for a complete scan. A write
        that fails for a passing storage fault (disk full, database locked...) ends the scan
        with `WriteFault`, which counts the photos not stored; a rerun carries on.
        """
        self._check_model()
        self._stop = stop
        self._done = self._total = 0
        self._counted = False  # the walk is done: `_total` photos are known
        report = ScanReport()
        try:
            return self._scan(roots, report)
        except IndexSaveError:
            raise  # every batch is stored; only the FAISS file is behind (it says so itself)
        except StorageError as exc:
            fault = storage_fault(exc, self.lib.folder)
            if fault is None:
                raise
            not_stored = self._total - self._done if self._counted else None
            raise WriteFault(fault, not_stored, self.lib.folder, report) from exc
        finally:
            self._stop = None

    def _scan(self, roots: Iterable[str | os.PathLike] | None, report: ScanReport) -> ScanReport:
        if not self.lib.read_only:
            settle_roots(self.lib)  # a library from before roots were resolved
        if roots is None:
            roots = [root.path for root in self.lib.roots()]
        roots = scan_roots(roots)
        self.path_filter = self.path_filter.with_roots([root.path for root in self.lib.roots()] + roots)
        plans, scanned = [], []
        for root in roots:
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
            disk = list(walk_photos(root, self.path_filter, walk_error_recorder(report, errors)))
            plans.append((disk, known, errors))
            scanned.append(root)
        self._start_progress(sum(len(disk) for disk, _, _ in plans))
        self._counted = True
        try:
            vanished: dict[str, PhotoRecord] = {}
            for disk, known, errors in plans:
                vanished.update(self._reconcile(disk, known, errors, report))
            # A drive unplugged during the scan: its photos are kept as missing, not removed.
            unplugged = [r for r in scanned if looks_unmounted(r) and self.lib.photos_under(r)]
            for root in unplugged:
                report.missing += self.lib.mark_missing_under(root)
            self._remove(vanished, report, keep_under=unplugged)  # after all roots claimed moves
        except BaseException:
            # Save what was committed if the disk lets us; the error that stopped the scan
            # is the one to tell, not a save that failed after it for the same reason.
            with contextlib.suppress(StorageError):
                self.lib.save_index()
            raise
        self.lib.save_index()
        return report

    def sync_paths(self, paths: Iterable[str | os.PathLike]) -> ScanReport:
        """Reconcile just these paths (files or folders, existing or not); for the watcher.

        The FAISS index is not saved here (the caller decides when); vectors are durable in
        the database as soon as each batch commits.
        """
        self._check_model()
        report, errors = ScanReport(), []
        on_error = walk_error_recorder(report, errors)
        disk: dict[str, DiskFile] = {}
        known: dict[str, PhotoRecord] = {}
        roots = [root.path for root in self.lib.roots()]
        # Bind mounts as they are now (a 20-line file read): paths inside one that shows
        # another root's folder are skipped, so its photos keep one path.
        self.path_filter = self.path_filter.with_roots(roots + list(self.path_filter.indexed_roots))
        for path in sorted({os.path.abspath(p) for p in paths}):
            if os.path.isdir(path):
                root = next((r for r in roots if is_under(path, r)), None)
                for found in walk_photos(path, self.path_filter, on_error, root):
                    disk[found.path] = found
            elif os.path.isfile(path) and self._accepts(path, roots):
                try:
                    st = os.stat(path)
                    disk[path] = DiskFile(path, st.st_size, st.st_mtime)
                except FileNotFoundError:
                    pass  # deleted since its event: it is simply gone
                except OSError as exc:
                    on_error(path, os_error_reason(exc))
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
        roots = [root.path for root in self.lib.roots()]
        return apply_rename(self.lib, src, dest, lambda path: self._accepts(path, roots))

    # -- reconciliation ----------------------------------------------------------------------
    def _partition(self, disk, known: dict[str, PhotoRecord], errors: list[str], report):
        """`(todo, vanished)`: the files of `disk` that are new or changed, each with its known
        record or None (unchanged ones are counted), and the known photos gone from disk."""
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
        return todo, vanished

    def _reconcile(self, disk, known: dict[str, PhotoRecord], errors: list[str], report):
        """Settle every file in `disk`; return the known photos that are gone (not removed yet)."""
        todo, vanished = self._partition(disk, known, errors, report)
        waiting: Waiting = {}
        with ThreadPoolExecutor(self.hash_workers, thread_name_prefix="fingerprint") as pool:
            # The embedder pulls paths lazily from _settle, so fingerprinting the next chunk
            # and decoding overlap with the model and the database writes of this one.
            copies = Copies(self.lib, self.embedder.fingerprint)
            to_embed = self._settle(todo, pool, vanished, waiting, copies, report)
            for embedded, failed in self.embedder.embed_batches(to_embed):
                self._store_batch(embedded, failed, waiting, vanished, copies, report)
        return vanished

    def _remove(self, vanished: dict[str, PhotoRecord], report: ScanReport, keep_under=()) -> None:
        """Forget photos whose files are gone, unless stopped early, claimed as a move, or
        inside a root that is itself gone (`keep_under`: an unplugged drive)."""
        if self._stopping():
            report.interrupted = True
            return
        remove_vanished(self.lib, vanished, report, keep_under)

    def _settle(self, todo, pool, vanished, waiting: Waiting, copies, report) -> Iterator[str]:
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
                    if error is not None and gone(found.path):
                        forget_later(found, record, vanished)
                    elif error is not None:
                        old = record.fingerprint if record else ""
                        record_failure(self.lib, found, old, error, report)
                    elif not settle_without_model(
                        self.lib, copies, found, record, fingerprint, vanished, report
                    ):
                        waiting[found.path] = (found, record, fingerprint)
                        needs_model.append(found.path)
            self._advance(len(chunk) - len(needs_model))
            yield from needs_model

    def _store_batch(self, embedded, failed, waiting: Waiting, vanished, copies, report) -> None:
        """One model batch written in one transaction (`store_embedded`), then progress, and
        a FAISS "save if due" every `save_every` batches."""
        store_embedded(self.lib, copies, embedded, failed, waiting, vanished, report)
        self._advance(len(embedded) + len(failed))
        self._batches += 1
        if self._batches % self.save_every == 0:
            try:
                self.lib.save_index_if_due()
            except IndexSaveError as exc:  # e.g. disk full: the vectors are safe in SQLite
                if str(exc) != self._save_failure:  # said once while it lasts
                    log.warning("%s", exc)
                self._save_failure = str(exc)
            else:
                self._save_failure = None

    def _accepts(self, path: str, roots: list[str]) -> bool:
        root = next((r for r in roots if is_under(path, r)), None)
        return self.path_filter.accepts_file(path, root)

    def _check_model(self) -> None:
        if not self._model_checked:
            check_model(self.lib, self.embedder.fingerprint)
            self._model_checked = True

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _start_progress(self, total: int) -> None:
        self._done, self._total = 0, total
        self._advance(0)

    def _advance(self, n: int) -> None:
        self._done += n
        if self.on_progress is not None:
            self.on_progress(self._done, self._total)


def _unchanged(record: PhotoRecord, found: DiskFile) -> bool:
    return record.status == INDEXED and record.size == found.size and record.mtime == found.mtime


def _try_fingerprint(path: str) -> tuple[str | None, str | None]:
    try:
        return file_fingerprint(path), None
    except OSError as exc:
        return None, os_error_reason(exc)
