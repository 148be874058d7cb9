"""Which files under a folder tree are photos worth indexing, and walking the tree for them.

- `PathFilter` says no to hidden names (leading dot), known junk folders (NAS thumbnail and
  recycle folders, OS bookkeeping) and the user's exclude globs; `library_filter` adds the
  library's own folder, which may sit inside a watched root.
- `walk_photos` lists every accepted photo under a root, following symlinked folders but
  never in a loop, and reports what it cannot read instead of stopping.
- `looks_unmounted` tells an unplugged drive (gone, or an empty mount point) from a folder.

Nothing here touches the library; the scanner and the watcher share it.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator

from photosearch.indexer.images import is_supported

JUNK_NAMES = frozenset({
    "@eaDir", "#recycle", "#snapshot", "$RECYCLE.BIN", "node_modules", "lost+found",
    "System Volume Information", "__MACOSX",
})  # NAS thumbnail/recycle folders, OS bookkeeping; names starting with "." are hidden too
JUNK_GLOBS = (".Trash-*",)


@dataclass(frozen=True)
class PathFilter:
    """Which names under a root are photos worth indexing.

    Hidden names (leading dot: `.git`, `.thumbnails`, `._IMG_1.JPG`) and known junk folders
    are always skipped; `exclude` adds glob patterns matched against the name and the
    absolute path (`"*/Backups/*"`, `"*.tmp.jpg"`, `"Screenshots"`).
    """

    exclude: tuple[str, ...] = ()
    # Real paths of every root of the library: a symlinked folder leading into one of them is an
    # alias of photos indexed there under their own names, so no walk follows it.
    indexed_roots: tuple[str, ...] = ()
    # Bind mounts under those roots that show a folder already indexed under its own name in
    # one of them (`mount --bind /data/A/2020 /data/B/mnt`): skipped like junk (`bind_aliases`).
    alias_folders: frozenset[str] = frozenset()

    def with_roots(self, roots: Iterable[str]) -> "PathFilter":
        """This filter, knowing the library's roots (resolved here) and their bind-mount
        aliases as mounted right now."""
        indexed = tuple(sorted({os.path.realpath(r) for r in roots}))
        return replace(self, indexed_roots=indexed, alias_folders=bind_aliases(indexed))

    def skips_name(self, name: str, path: str = "") -> bool:
        """One folder entry: hidden, junk, an alias bind mount, or matching an exclude glob
        (by name or path)."""
        if name.startswith(".") or name in JUNK_NAMES or path in self.alias_folders:
            return True
        patterns = JUNK_GLOBS + self.exclude
        return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)

    def accepts_file(self, path: str, root: str | None = None) -> bool:
        """A supported photo whose every name below `root` passes (just the name if no root)."""
        return is_supported(path) and self.accepts_folder(path, root or os.path.dirname(path))

    def accepts_folder(self, path: str, root: str) -> bool:
        """No hidden, junk or excluded name on the way from `root` down to `path`."""
        prefix = root
        for part in os.path.relpath(path, root).split(os.sep):
            if part in (os.curdir, os.pardir):
                continue
            prefix = os.path.join(prefix, part)
            if self.skips_name(part, prefix):
                return False
        return True


def library_filter(library_folder, exclude=()) -> PathFilter:
    """The filter for one library: `exclude`, plus the library's own folder, which may sit
    inside a watched root (its thumbnails are not photos to index)."""
    own = (glob.escape(os.path.abspath(library_folder)),) if library_folder else ()
    return PathFilter(tuple(exclude) + own)


@dataclass(frozen=True)
class DiskFile:
    """A photo file as the walk found it (`mtime`: os.stat st_mtime, as the library stores)."""

    path: str
    size: int
    mtime: float


def walk_photos(
    root: str, path_filter: PathFilter, on_error: Callable[[str, str], None],
    inside: str | None = None,
) -> Iterator[DiskFile]:
    """Every accepted photo under `root`, following symlinked folders but never in a loop.

    `inside` is the watched root this walk is part of (default: `root` itself). A symlinked
    folder that points into it, or at one of its ancestors, is an alias of folders that are
    indexed under their own names, so it is not followed (else one photo would get two
    paths); one that points elsewhere (another drive) is. Each real folder (device, inode)
    is listed once. A symlinked folder leading into another of the library's roots
    (`path_filter.indexed_roots`) is not followed either: those photos are indexed there,
    nor is a bind mount showing a folder of those roots (`path_filter.alias_folders`).
    Folders that cannot be listed and files that cannot be stat'ed go to
    `on_error`; a file that vanishes between the listing and its stat is simply not there.
    """
    real_inside = os.path.realpath(inside or root)
    others = path_filter.indexed_roots
    if inside is not None and root != inside and os.path.islink(root) and alias_link(root, real_inside, others):
        return
    if any(is_under(root, alias) for alias in path_filter.alias_folders):
        return  # inside a bind mount showing folders indexed under their own names
    stack, seen = [root], set()
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            on_error(folder, f"cannot read folder: {os_error_reason(exc)}")
            continue
        subfolders = []
        for entry in entries:
            if path_filter.skips_name(entry.name, entry.path):
                continue
            try:
                if entry.is_dir():
                    if not entry.is_symlink() or not alias_link(entry.path, real_inside, others):
                        subfolders.append(entry.path)
                elif entry.is_file() and is_supported(entry.name):
                    st = entry.stat()
                    yield DiskFile(entry.path, st.st_size, st.st_mtime)
            except FileNotFoundError:
                continue  # deleted while we looked: the next event or scan settles it
            except OSError as exc:
                on_error(entry.path, os_error_reason(exc))
        stack.extend(reversed(subfolders))  # depth-first, in name order


def alias_link(link: str, real_inside: str, indexed_roots: Iterable[str] = ()) -> bool:
    """A symlinked folder leading into the walked tree, to an ancestor of it (a loop), or into
    another root of the library."""
    target = os.path.realpath(link)
    return (is_under(target, real_inside) or is_under(real_inside, target)
            or any(is_under(target, root) for root in indexed_roots))


MOUNTINFO = "/proc/self/mountinfo"


def bind_aliases(roots: Iterable[str], mountinfo: str = MOUNTINFO) -> frozenset[str]:
    """Mount points inside `roots` (real paths) that show a folder which is also reachable,
    under its own name, inside one of `roots`: bind mounts (`mount --bind /data/A/2020
    /data/B/mnt`, or `A/x` bound at `A/y`). Their realpath is the mount point itself and they
    share the source's (device, inode), so only the mount table tells them apart.

    From `/proc/self/mountinfo` (field 3 device, 4 the mount's root inside its file system,
    5 the mount point): a mount M is an alias when another mount N of the same device
    shows the same folder at a place L inside a root (L = N's mount point + the rest of
    M's root below N's), L being an ordinary folder of N (N's root strictly above M's) or,
    for two mounts of the same folder, N being the older one (lower mount id). L must stat
    to the same folder, so shadowed places do not count. No mount table (not Linux): none.
    """
    roots = tuple(roots)
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return frozenset()
    mounts = []  # (mount id, device, root within its file system, mount point)
    for line in lines:
        fields = line.split()
        if len(fields) >= 5:
            mounts.append((int(fields[0]) if fields[0].isdigit() else 0, fields[2],
                           _unescape(fields[3]), _unescape(fields[4])))
    aliases = set()
    for mid, dev, fs_path, point in mounts:
        if not any(is_under(point, r) and point != r for r in roots):
            continue  # not inside a root (a root itself is resolved by `root_folders`)
        for other_id, other_dev, other_fs, other_point in mounts:
            if other_dev != dev or other_id == mid or not is_under(fs_path, other_fs):
                continue
            if fs_path == other_fs and other_id > mid:
                continue  # the same folder mounted twice: the older mount is the real one
            place = os.path.join(other_point, os.path.relpath(fs_path, other_fs))
            place = os.path.normpath(place)
            if is_under(place, point) or not any(is_under(place, r) for r in roots):
                continue
            if _same_folder(place, point):
                aliases.add(point)
                break
    return frozenset(aliases)


def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _same_folder(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def looks_unmounted(root: str) -> bool:
    """Gone, or an empty folder (the mount point of a drive that is not plugged in)."""
    try:
        with os.scandir(root) as it:
            return next(it, None) is None
    except OSError:
        return True


def is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def os_error_reason(exc: OSError) -> str:
    """A short reason for a failed read, as stored with a failed photo."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    return exc.strerror or str(exc)
