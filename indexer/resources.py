"""What every library command shares: the library folder, the model, and the user-facing error.

A leaf module: `indexer.service` (the command functions) and `indexer.searcher` (answers over an
open library) both build on it, and it imports neither. Storage and the model are imported
inside the functions that use them, so `photosearch query` answered by a running daemon loads
neither ONNX Runtime nor FAISS.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Callable

from photosearch.miniclip.checkpoint_header import DEFAULT_CHECKPOINT  # noqa: F401 - re-exported

Log = Callable[[str], None]
Progress = Callable[[int, int], None]  # (photos settled, photos seen)
MODEL_META_KEY = "model_fingerprint"  # = indexer.model_guard.MODEL_META_KEY
DB_NAME = "library.sqlite"  # = storage.library.DB_NAME (importing storage here would load SQLAlchemy)
MAX_K = 1000
REINDEX_META_KEY = "reindex_to"  # set while a reindex runs: the model fingerprint it embeds with


class ServiceError(Exception):
    """A problem the user can fix; the message says how (the CLI prints it on one line)."""

    user_facing = True


def quiet(message: str) -> None:
    pass


def library_folder(library_dir: str | os.PathLike | None = None) -> Path:
    """The library folder: `library_dir`, else $PHOTOSEARCH_LIBRARY, else the XDG default."""
    from photosearch.storage.library_dir import default_library_dir

    return Path(library_dir).expanduser().absolute() if library_dir else default_library_dir()


def secure_library(folder: Path, log: Log, create: bool = False) -> None:
    """Make the library folder private to this account (0700, files 0600; created if `create`),
    saying so in one line when it was not; ForeignLibraryError (user-facing) when another account
    owns it or a file in it (see storage.privacy)."""
    from photosearch.storage.privacy import describe, secure_folder

    tightened = secure_folder(folder, create)
    if tightened:
        log(describe(folder, tightened))


def search_text(text: str) -> str:
    """A query as the model will read it: whitespace runs made one space, ends stripped.

    ServiceError (one line) for an empty query, and for one that is not text: bytes that are not
    UTF-8 (which Python keeps as lone surrogates, e.g. from `query $'\\xff\\xfe dog'`) or control
    characters. They are refused rather than replaced, the same way on the command line, through
    the daemon and in the web API, so no search runs on words the user did not type.
    """
    text = " ".join(str(text).split())
    if not text:
        raise ServiceError('the query is empty: say what to look for, e.g. "white chair"')
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise ServiceError("the query is not valid UTF-8 text (it holds bytes like \\xff that are not "
                           "characters): type it again in a UTF-8 terminal")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ServiceError("the query contains control characters: type it as plain text")
    return text


def require_library(folder: Path) -> None:
    """ServiceError unless `folder` holds a library database."""
    if not (folder / DB_NAME).is_file():
        raise ServiceError(empty_library_message(folder))


def unfinished_reindex_message(lib) -> str | None:
    """What to do about a reindex that stopped before every photo was embedded again, or None."""
    if lib.get_meta(REINDEX_META_KEY) is None:
        return None
    counts = lib.stats()["by_status"]
    if not counts["pending"]:
        return None
    return (f"a reindex stopped with {counts['pending']} photos still to embed ({counts['indexed']} done): "
            "run `photosearch reindex` to finish it")


def empty_library_message(folder: Path) -> str:
    return (f"the library at {folder} is empty: add photos with `photosearch index PATH` "
            "or keep a folder indexed with `photosearch watch PATH`")


def checkpoint_path(checkpoint: str | os.PathLike | None) -> Path:
    """The given checkpoint, or the shipped one; ServiceError saying what to do if absent."""
    path = Path(checkpoint).expanduser() if checkpoint else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise ServiceError(
            f"no model checkpoint at {path}: train one with `photosearch train --captions-json "
            "FILE --image-root DIR`, or pass --checkpoint FILE")
    return path


def load_model(checkpoint: str | os.PathLike | None, image: bool = True, text: bool = False):
    """The checkpoint's `miniclip.runtime.SearchModel` (ONNX Runtime; no torch), with the towers
    asked for built now. Raises CheckpointError (the CLI prints it) for a missing, stale or
    corrupt export, naming the `photosearch export` command that makes it."""
    from photosearch.miniclip.runtime import load_search_model

    return load_search_model(checkpoint_path(checkpoint), image=image, text=text)


def load_query_model(checkpoint: str | os.PathLike | None):
    """What encodes queries: the SearchModel's text side only."""
    return load_model(checkpoint, image=False, text=True)


def model_fingerprint(path: Path) -> str | None:
    """The model fingerprint of a checkpoint's export, read from headers alone (no sessions, no
    hashing); None if unreadable."""
    from photosearch.miniclip.runtime import export_fingerprint

    return export_fingerprint(path)


def model_problem(path: Path) -> str | None:
    """Why the checkpoint at `path` cannot serve (its header or export manifest), or None."""
    from photosearch.miniclip.errors import CheckpointError
    from photosearch.miniclip.runtime import load_search_model

    try:
        load_search_model(path)  # header and manifest only: no sessions, no hashing
    except CheckpointError as exc:
        return str(exc)
    return None


def model_mismatch(lib, model_fp: str | None) -> str | None:
    """Why the library's vectors do not fit model `model_fp` (None when they do, or none exist)."""
    stored = lib.get_meta(MODEL_META_KEY)
    if not (stored and model_fp and stored != model_fp) or not lib.stats()["vectors"]:
        return None
    return (f"the library was indexed with model {stored} but the checkpoint is {model_fp}: "
            "run `photosearch reindex` to re-embed every photo with it")


def ensure_same_model(lib, model_fp: str) -> None:
    """ServiceError when the library's vectors come from another model."""
    message = model_mismatch(lib, model_fp)
    if message:
        raise ServiceError(message)
