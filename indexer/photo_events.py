"""Watchdog events about photos, filtered into `Change`s (the watcher's first half).

`PhotoEventHandler` runs on watchdog's thread. It only filters (photo extensions, hidden and
junk folders, exclude globs, inside a watched root) and puts `Change`s on a queue; it never
touches the disk or the library, but for one `lstat` of a new name that is not a photo: a
symlink created, moved or deleted is a `LINK` change (see `indexer.links`).
`indexer.watcher` drains the queue on its own thread.
"""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass
from typing import Iterable

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from photosearch.indexer.folders import PathFilter, is_under
from photosearch.indexer.images import is_supported

CHANGED, FOLDER, DELETED, MOVED, LINK = "changed", "folder", "deleted", "moved", "link"


@dataclass(frozen=True)
class Change:
    """One filtered filesystem event: `kind` is changed/folder/deleted/moved."""

    kind: str  # one of CHANGED, FOLDER, DELETED, MOVED, LINK
    path: str
    dest: str | None = None  # for moves


class PhotoEventHandler(FileSystemEventHandler):
    """Turns watchdog events about photos into `Change`s on `changes`; nothing else."""

    def __init__(self, changes: queue.Queue, roots: Iterable[str], path_filter: PathFilter):
        super().__init__()
        self.changes = changes
        self.roots = sorted((os.path.abspath(r) for r in roots), key=len, reverse=True)
        self.path_filter = path_filter
        self.links: dict[str, str] = {}  # the followed symlinked folders (the watcher's view)

    def on_any_event(self, event: FileSystemEvent) -> None:
        path, kind = os.fsdecode(event.src_path), event.event_type
        if not event.is_directory and kind in ("created", "deleted", "moved"):
            self._links_changed(path, os.fsdecode(event.dest_path) if kind == "moved" else None)
        if kind == "moved":  # only a move between two wanted names is a move for us
            dest = os.fsdecode(event.dest_path)
            src_wanted = self.wants(path, event.is_directory)
            dest_wanted = self.wants(dest, event.is_directory)
            if src_wanted and dest_wanted:
                self.changes.put(Change(MOVED, path, dest))
            elif src_wanted:  # a.jpg -> a.jpg.bak, or renamed to a hidden name
                self.changes.put(Change(DELETED, path))
            elif dest_wanted:  # x.jpg.part -> x.jpg, or moved in from outside the roots
                self.changes.put(Change(FOLDER if event.is_directory else CHANGED, dest))
        elif not self.wants(path, event.is_directory):
            return
        elif kind == "deleted":
            self.changes.put(Change(DELETED, path))
        elif event.is_directory:
            if kind == "created":
                self.changes.put(Change(FOLDER, path))
            # a folder's "modified" only echoes changes to its files, which come on their own
        elif kind in ("created", "modified", "closed", "attrib"):
            # attrib: a touch or a chmod (a file made readable again is worth a retry)
            self.changes.put(Change(CHANGED, path))

    def _links_changed(self, path: str, dest: str | None) -> None:
        """A symlink (to a folder, maybe) that appeared, went or moved: a `LINK` change."""
        for end in (path, dest):
            if end and not is_supported(end) and self.wants(end, is_directory=True) \
                    and (end in self.links or os.path.islink(end)):
                self.changes.put(Change(LINK, end))

    def wants(self, path: str, is_directory: bool) -> bool:
        """Inside a watched root, with no hidden/junk/excluded name; files must be photos."""
        root = next((r for r in self.roots if is_under(path, r)), None)
        if root is None or not self.path_filter.accepts_folder(path, root):
            return False
        return is_directory or self.path_filter.accepts_file(path, root)
