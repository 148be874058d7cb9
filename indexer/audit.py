"""Does the library match the disk? An audit for tests, the soak script and bug reports.

Once the indexer has settled, every photo file under the library's roots (as the scanner
sees them: same filter, same walk) must have exactly one row, every row of a present root
must point at a file that exists, no two rows may be the same file, and the FAISS index
must hold exactly the vectors stored in SQLite.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass, field

from photosearch.storage import MISSING, PENDING

from photosearch.indexer.folders import PathFilter, library_filter, walk_photos


@dataclass
class Audit:
    """What differs between the library and the disk (all empty/None when consistent)."""

    on_disk: int = 0  # photo files found under the roots
    in_library: int = 0  # rows under the roots (any status)
    lost: list[str] = field(default_factory=list)  # on disk, but no row
    stale: list[str] = field(default_factory=list)  # a row (not missing) whose file is gone
    duplicated: list[str] = field(default_factory=list)  # a file with more than one row
    pending: list[str] = field(default_factory=list)  # rows never settled (indexed or failed)
    index_mismatch: str | None = None  # FAISS differs from SQLite

    @property
    def consistent(self) -> bool:
        return not (self.lost or self.stale or self.duplicated or self.pending
                    or self.index_mismatch)

    def describe(self) -> str:
        parts = [f"{len(v)} {name} (e.g. {v[0]!r})" for name, v in
                 (("lost", self.lost), ("stale", self.stale), ("duplicated", self.duplicated),
                  ("pending", self.pending)) if v]
        if self.index_mismatch:
            parts.append(f"FAISS: {self.index_mismatch}")
        return "; ".join(parts) or f"consistent ({self.on_disk} photos)"


def audit(lib, path_filter: PathFilter | None = None) -> Audit:
    """Compare the library with what is on disk under its roots right now (`path_filter`:
    the scanner's, by default the library's own with no excludes)."""
    path_filter = (path_filter or library_filter(lib.folder)).with_roots(root.path for root in lib.roots())
    result = Audit()
    disk: set[str] = set()
    rows = []
    for root in lib.roots():
        disk.update(found.path for found in walk_photos(root.path, path_filter, _ignore))
        rows.extend(lib.photos_under(root.path))
    result.on_disk, result.in_library = len(disk), len(rows)
    paths = Counter(row.path for row in rows)
    result.duplicated = sorted(path for path, n in paths.items() if n > 1)
    result.lost = sorted(disk - set(paths))
    result.stale = sorted(r.path for r in rows if r.status != MISSING and not os.path.lexists(r.path))
    result.pending = sorted(r.path for r in rows if r.status == PENDING)
    files = Counter(_identity(row.path) for row in rows if row.status != MISSING)
    files.pop(None, None)
    twins = {key for key, n in files.items() if n > 1}
    result.duplicated += sorted(r.path for r in rows if _identity(r.path) in twins)
    result.index_mismatch = lib.check_index()
    return result


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, so that one file reached through two folder
    paths (a symlinked folder) counts as a duplicate. Symlinked files and hard links are
    names someone made on purpose: each is a photo of its own (None)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return None if st.st_nlink > 1 or stat.S_ISLNK(st.st_mode) else (st.st_dev, st.st_ino)


def _ignore(path: str, reason: str) -> None:
    pass
