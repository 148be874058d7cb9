"""Watches on the targets of symlinked folders, with events mapped back through the link.

The scanner follows a symlinked folder that leads out of its root (`collection/2022 ->
../elsewhere/2022`) and indexes its photos under the link's path, but inotify watches do not
follow links: watchdog never reports what happens in the target. `LinkWatches` schedules one
more recursive watch on each such target and relays its events to the photo handler with the
target's path replaced by the link's, so the library sees `collection/2022/new.jpg`.
Links inside a target are followed too, never in a loop. Links that point into a watched
root (or at an ancestor of one) are aliases the scanner does not follow, so they are skipped.
Roots themselves are resolved to real folders by the scanner (`indexer.root_folders`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from photosearch.indexer.folders import PathFilter, alias_link, is_under

log = logging.getLogger(__name__)


class _Relay(FileSystemEventHandler):
    """Passes events under `target` on to `handler` as if they happened under `link`."""

    def __init__(self, handler: FileSystemEventHandler, link: str, target: str):
        super().__init__()
        self.handler, self.link, self.target = handler, link, target

    def dispatch(self, event: FileSystemEvent) -> None:
        src, dest = (os.fsdecode(p) if p else p for p in (event.src_path, event.dest_path))
        self.handler.dispatch(dataclasses.replace(
            event, src_path=_through(src, self.target, self.link),
            dest_path=_through(dest, self.target, self.link) if dest else dest))


def _through(path: str, target: str, link: str) -> str:
    return link + path[len(target):] if is_under(path, target) else path


class LinkWatches:
    """The followed symlinked folders under `roots` and their targets' watches."""

    def __init__(self, roots: list[str], path_filter: PathFilter, handler, on_unwatchable):
        self.roots, self.path_filter, self.handler = roots, path_filter, handler
        self.on_unwatchable = on_unwatchable  # called with a link whose target cannot be watched
        self.links: dict[str, str] = {}  # link path -> real target
        self._watches: dict[str, object] = {}  # link path -> watchdog ObservedWatch
        self._lock = threading.Lock()

    def to_library(self, path: str) -> str:
        """A path under a link's target, as the library knows it (through the link)."""
        for link, target in list(self.links.items()):
            if is_under(path, target):
                return _through(path, target, link)
        return path

    def add_under(self, observer, folder: str) -> list[str]:
        """Find the followed links at or under `folder` and watch their targets; the new ones."""
        new = []
        for link, target in _followed_links(folder, self.roots, self.path_filter):
            with self._lock:
                if link in self.links:
                    continue
                self.links[link] = target
            try:
                self._watches[link] = observer.schedule(_Relay(self.handler, link, target), target,
                                                        recursive=True)
            except OSError as exc:
                log.warning("cannot watch %s (linked as %s): %s", target, link, exc)
                self.on_unwatchable(link)
            new.append(link)
        return new

    def remove_under(self, observer, folder: str) -> list[str]:
        """Stop watching the targets of links at or under `folder` (gone, or not a link now)."""
        gone = [link for link in self.links if is_under(link, folder)
                and os.path.realpath(link) != self.links[link]]
        for link in gone:
            watch = self._watches.pop(link, None)
            if watch is not None:
                try:
                    observer.unschedule(watch)
                except (KeyError, OSError):
                    pass  # its target went with it
            with self._lock:
                del self.links[link]
        return gone


def _followed_links(start: str, roots: list[str], path_filter: PathFilter) -> list[tuple[str, str]]:
    """(link, real target) of every symlinked folder at or under `start` that the scanner
    follows (it leads out of its root), looking through links too, each real folder once."""
    root = next((r for r in roots if is_under(start, r)), None)
    if root is None:
        return []
    real_root, found, seen, stack = os.path.realpath(root), [], set(), [start]
    while stack:
        folder = stack.pop()
        if os.path.islink(folder) and folder != root:
            target = os.path.realpath(folder)
            if alias_link(folder, real_root, (os.path.realpath(r) for r in roots)):
                continue  # an alias of folders indexed under their own names, or a loop
            if os.path.isdir(target):
                found.append((folder, target))
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                stack.extend(e.path for e in it if e.is_dir()
                             and not path_filter.skips_name(e.name, e.path))
        except OSError:
            continue  # unreadable or gone: the scan reports it
    return found
