"""One folder, one root: resolving the folders a scan is asked for, and mending old libraries.

`Library.add_root` registers a folder by its real path, and never two roots that overlap
(the same folder by another name, or one inside the other: see `storage.roots.add`). What
is left to the indexer:

- `scan_roots`: the folders a scan walks, resolved and without overlaps, so `index ~/Pictures`
  (a symlink to `/data/photos`) walks `/data/photos` and stores its paths, never the alias;
- `settle_roots`: libraries from before the rule may hold an alias root and every photo twice
  (once under each name). The alias root goes; each photo stored under it is moved to its
  real path, keeping its vector, or forgotten when that path is stored already.
"""

from __future__ import annotations

import os
from typing import Iterable

from photosearch.storage import Library
from photosearch.storage.roots import canonical, inside, same_folder


def scan_roots(paths: Iterable[str | os.PathLike]) -> list[str]:
    """`paths` resolved (real paths), without duplicates or folders inside another one."""
    resolved = sorted({canonical(os.path.abspath(p)) for p in paths}, key=len)
    kept: list[str] = []
    for path in resolved:
        if not any(inside(path, k) or same_folder(path, k) for k in kept):
            kept.append(path)
    return kept


def settle_roots(lib: Library) -> int:
    """Merge roots that name one folder or lie inside another; return photos forgotten as
    duplicates. Roots not on disk (an unplugged drive) are left alone."""
    dropped = 0
    # Aliases first: a real root compared with an alias row of itself would look covered.
    for root in sorted(lib.roots(), key=lambda r: canonical(r.path) == r.path):
        registered = [r.path for r in lib.roots()]
        if root.path not in registered or not os.path.isdir(root.path):
            continue
        others = [path for path in registered if path != root.path]
        real = canonical(root.path)
        if real == root.path and not any(inside(real, o) or same_folder(real, o) for o in others):
            continue
        with lib.transaction():
            lib.remove_root(root.path)
            cover = lib.add_root(real).path
            base = real if inside(real, cover) else cover  # else: the same folder by inode
            if base != root.path:
                dropped += _move_photos(lib, root.path, base)
    return dropped


def _move_photos(lib: Library, old: str, new: str) -> int:
    """Photos under folder `old` moved to the same place under `new` (vectors kept); those
    whose new path is stored already are duplicates and forgotten. Returns how many."""
    dropped = 0
    for record in lib.photos_under(old):
        target = new + record.path[len(old.rstrip(os.sep)):]
        if lib.get_by_path(target) is not None:
            lib.remove(record.id)
            dropped += 1
        else:
            lib.move(record.id, target)
    return dropped
