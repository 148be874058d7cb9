"""What a reconciliation did (`ScanReport`), and the library writes that settle each file.

`indexer.scanner` decides which files need a look, reads and fingerprints them and drives the
embedder; the functions here write what it found to the library and count it in the report.
Each runs inside the caller's `lib.transaction()` (or opens one of its own):

- `settle_without_model`: a touched file, a move, or a copy of an indexed photo: no embedding;
- `store_embedded`: one model batch's new rows and vectors, and its failures;
- `remove_vanished`: photos whose files are gone, after new files had their chance to claim
  them as moves;
- `apply_rename`: a rename the watcher saw, applied without reading the disk;
- `record_failure`, `walk_error_recorder` and `forget_later`: a file or folder that could
  not be read, or a file that went away while we looked (not a failure).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping

from photosearch.storage import INDEXED, Library, PhotoRecord

from photosearch.indexer.copies import Copies
from photosearch.indexer.folders import DiskFile, is_under
from photosearch.indexer.taken_time import taken_fields

# path -> (what the walk saw, the library's row for it or None, its content fingerprint)
Waiting = dict[str, tuple[DiskFile, PhotoRecord | None, str]]


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
        """Count one failure and remember why (`reason` is a short human-readable phrase)."""
        self.failed += 1
        self.failures.append((path, reason))


def settle_without_model(
    lib: Library,
    copies: Copies,
    found: DiskFile,
    record: PhotoRecord | None,
    fingerprint: str,
    vanished: dict[str, PhotoRecord],
    report: ScanReport,
) -> bool:
    """Settle `found` without the model if its content is already known; True if it was.

    Touched (same content as its own indexed row), moved (the content belongs to an indexed
    photo whose file vanished in this walk, which is taken out of `vanished`, or is gone from
    disk), or a copy of an indexed photo embedded by the current model (its vector is
    reused). `copies` looks each fingerprint up once per reconciliation, so N copies of one
    file cost O(N), not O(N²). False: the file needs embedding.
    """
    if record is not None and record.status == INDEXED and record.fingerprint == fingerprint:
        lib.update_photo(replace(record, size=found.size, mtime=found.mtime, **taken_fields(record, found.mtime)))
        report.unchanged += 1
        return True
    candidate = None if record is not None else copies.claim_move(fingerprint, vanished)
    if candidate is not None:  # its old path vanished in this walk, or it is gone: a move
        lib.move(candidate.id, found.path)
        lib.update_photo(replace(candidate, path=found.path, size=found.size, mtime=found.mtime,
                                 **taken_fields(candidate, found.mtime)))
        report.moved += 1
        return True
    donor = copies.donor(fingerprint, vanished)
    if donor is not None:  # an identical copy: same vector
        pid = lib.add_photo(new_record(found, fingerprint, donor[0]))
        lib.set_vectors({pid: donor[1]})
        lib.copy_tags_and_hash(donor[0].id, pid)
        count_new(report, record)
        return True
    return False


def store_embedded(
    lib: Library,
    copies: Copies,
    embedded: Mapping[str, object],
    failed: Mapping[str, str],
    waiting: Waiting,
    vanished: dict[str, PhotoRecord],
    report: ScanReport,
) -> None:
    """One model batch: its rows and vectors (and its failures) in one transaction.

    `embedded` maps path -> an embedded photo (`.vector` float32 `(D,)`, `.width`, `.height`,
    `.taken_at`, `.tags`, `.phash`); `failed` maps path -> reason. Every path is taken out of `waiting`. A file
    deleted since it was fingerprinted is not a failure: it joins `vanished`.
    """
    with lib.transaction():
        vectors, tags, hashes = {}, {}, {}
        for path, photo in embedded.items():
            found, record, fingerprint = waiting.pop(path)
            row = new_record(found, fingerprint, photo, copies.model_fingerprint)
            pid = lib.add_photo(row)
            vectors[pid] = photo.vector
            tags[pid] = list(getattr(photo, "tags", ()))
            hashes[pid] = getattr(photo, "phash", None)
            copies.learn(replace(row, id=pid), photo.vector)
            count_new(report, record)
        for path, reason in failed.items():
            found, record, fingerprint = waiting.pop(path)
            if gone(path):
                forget_later(found, record, vanished)
            else:
                record_failure(lib, found, fingerprint, reason, report)
        lib.set_vectors(vectors)
        lib.set_tags(tags)
        lib.set_hashes(hashes)


def remove_vanished(
    lib: Library,
    vanished: Mapping[str, PhotoRecord],
    report: ScanReport,
    keep_under: Iterable[str] = (),
) -> None:
    """Forget photos whose files are gone, in one transaction, except those inside a root
    that is itself gone (`keep_under`: an unplugged drive) and those moved meanwhile."""
    keep_under = list(keep_under)
    with lib.transaction():
        for record in vanished.values():
            if any(is_under(record.path, root) for root in keep_under):
                continue
            current = lib.get(record.id)
            if current is not None and current.path == record.path:
                lib.remove(record.id)
                report.removed += 1


def apply_rename(
    lib: Library, src: str, dest: str, accepts: Callable[[str], bool]
) -> ScanReport:
    """Move the photo at absolute path `src` (or every photo under folder `src`) to `dest`,
    keeping vectors, in one transaction. Nothing is read from disk.

    Photos whose new path `accepts` refuses (`a.jpg` -> `a.jpg.bak`) are removed; a photo
    that the rename overwrote is forgotten.
    """
    report = ScanReport()
    record = lib.get_by_path(src)
    if record is not None:
        pairs = [(record, dest)]
    else:
        pairs = [(r, dest + r.path[len(src):]) for r in lib.photos_under(src)]
    with lib.transaction():
        for record, new_path in pairs:
            if not accepts(new_path):
                lib.remove(record.id)
                report.removed += 1
                continue
            occupant = lib.get_by_path(new_path)
            if occupant is not None and occupant.id != record.id:
                lib.remove(occupant.id)
            lib.move(record.id, new_path)
            report.moved += 1
    return report


def record_failure(
    lib: Library, found: DiskFile, fingerprint: str, reason: str, report: ScanReport
) -> None:
    """Mark `found` failed in the library (any old vector dropped) and in the report."""
    lib.mark_failed(found.path, reason, found.size, found.mtime, fingerprint)
    report.fail(found.path, reason)


def new_record(
    found: DiskFile, fingerprint: str, photo, model_fingerprint: str | None = None
) -> PhotoRecord:
    """A fresh pending row for `found`, with size/time facts from an embedding or a twin."""
    return PhotoRecord(
        path=found.path, size=found.size, mtime=found.mtime, fingerprint=fingerprint,
        width=photo.width, height=photo.height, **taken_fields(photo, found.mtime),
        model_fingerprint=model_fingerprint or getattr(photo, "model_fingerprint", None),
    )


def count_new(report: ScanReport, record: PhotoRecord | None) -> None:
    """Count a stored photo as added (no previous row) or updated."""
    if record is None:
        report.added += 1
    else:
        report.updated += 1


def gone(path: str) -> bool:
    """Deleted (or moved away) after the walk saw it: not a failure, just not there."""
    return not os.path.lexists(path)


def forget_later(
    found: DiskFile, record: PhotoRecord | None, vanished: dict[str, PhotoRecord]
) -> None:
    """A known photo whose file went away mid-reconciliation is removed with the other
    vanished ones (or claimed as a move); a new one is simply never added."""
    if record is not None:
        vanished[found.path] = record


def walk_error_recorder(report: ScanReport, errors: list[str]) -> Callable[[str, str], None]:
    """A walk error handler that records the failure and remembers the path as unreadable."""

    def on_error(path: str, reason: str) -> None:
        errors.append(path)
        report.fail(path, reason)

    return on_error
