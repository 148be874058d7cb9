"""A library folder is private to the account that owns it.

The folder is created 0700 and every file in it 0600 (sockets and locks too), whatever the
umask: the database holds every photo's path and vector, and anyone who can read it can search
the owner's photos. An existing library is tightened when it is opened (`secure_folder` says
what it changed, for the one line the command prints).

A folder that another account owns, or that holds a file another account owns, is refused:
that account could have put a socket there that answers the owner's queries, a lock that
names another process, or a database it can rewrite under the owner's feet. Group or world
*write* permission on a folder the user owns is tightened like read permission, and the
files found in it must still all be the user's own.

Stdlib only: `photosearch query` checks its library before asking the daemon.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import StorageError

FOLDER_MODE, FILE_MODE = 0o700, 0o600
OPEN_TO_OTHERS = 0o077  # group and world bits


class ForeignLibraryError(StorageError):
    """The library folder, or a file in it, belongs to another account."""

    user_facing = True


def secure_folder(folder: str | os.PathLike, create: bool = False) -> list[str]:
    """Make `folder` (created 0700 if `create` and absent) private to this account.

    Returns the names (relative to `folder`, "." for itself) whose modes were tightened: empty
    when it already was private, or when it does not exist and `create` is false. Only the
    folder's own entries are looked at, and the thumbnails inside it only when the folder
    itself was open to others (a 0700 folder hides them anyway). Raises ForeignLibraryError
    naming the first entry another account owns, StorageError if it cannot be created.
    """
    folder = Path(folder)
    if create:
        try:
            folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the library folder {folder}: {exc.strerror}") from exc
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot open the library folder {folder}: {exc.strerror}") from exc
    _require_own(folder, info, folder)
    tightened = []
    if stat.S_IMODE(info.st_mode) != FOLDER_MODE:
        os.chmod(folder, FOLDER_MODE)
        tightened.append(".")
    tightened += _tighten_entries(folder, folder, deep=bool(tightened))
    return tightened


def create_private_file(path: str | os.PathLike) -> None:
    """Create `path` empty and 0600 if it does not exist (SQLite then makes its -wal and -shm
    files with the same mode as the database)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    os.close(fd)


def make_private(path: str | os.PathLike) -> None:
    """chmod 0600 (a file) or 0700 (a folder), whatever the umask made it."""
    os.chmod(path, FOLDER_MODE if os.path.isdir(path) else FILE_MODE)


def describe(folder: str | os.PathLike, tightened: list[str]) -> str:
    """The one line a command prints after `secure_folder` tightened something."""
    files = [name for name in tightened if name != "."]
    what = "the folder" + (f" and {len(files)} file(s) in it" if files else "")
    return (f"note: the library {folder} was open to other accounts; made {what} private to you "
            "(0700 folders, 0600 files)")


def _tighten_entries(folder: Path, top: Path, deep: bool) -> list[str]:
    tightened = []
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise StorageError(f"cannot list the library folder {folder}: {exc.strerror}") from exc
    found = []
    for entry in entries:
        try:
            found.append((entry, entry.stat(follow_symlinks=False)))
        except FileNotFoundError:
            continue  # removed meanwhile (a temporary file)
    for entry, info in found:  # every owner checked before anything is changed
        _require_own(Path(entry.path), info, top)
    for entry, info in found:
        if stat.S_ISLNK(info.st_mode):
            continue  # a link's own mode means nothing; what it points to is not the library's
        is_dir = stat.S_ISDIR(info.st_mode)
        wanted = FOLDER_MODE if is_dir else FILE_MODE
        if stat.S_IMODE(info.st_mode) & (OPEN_TO_OTHERS | 0o7000):
            os.chmod(entry.path, stat.S_IMODE(info.st_mode) & wanted)
            tightened.append(os.path.relpath(entry.path, top))
        if is_dir and deep:
            tightened += _tighten_entries(Path(entry.path), top, deep)
    return tightened


def _require_own(path: Path, info: os.stat_result, top: Path) -> None:
    if info.st_uid != os.geteuid():
        what = "library folder" if path == top else f"file {path.name} in the library folder"
        raise ForeignLibraryError(
            f"the {what} {top} belongs to another account (uid {info.st_uid}), which could "
            "read or forge what photosearch keeps there: use a folder of your own (--library DIR)")
