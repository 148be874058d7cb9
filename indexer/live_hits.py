"""Search hits whose files are still there.

Without a daemon nobody watches the disk between scans, so the library can list a photo that
was deleted a minute ago. Before answering, the top hits' files are checked with one `stat`
each (k of them, not the library); a hit whose file is gone is skipped and more hits are
fetched to fill `k`. Nothing is written: in-process searches open the library read-only, and
the next writer (`index`, or `watch`'s start-up scan and its events) reconciles the roots and
removes those photos anyway.

`similar` also skips hits that are the query photo's own file under another name (a hard
link, or a path through a bind mount).

`PHOTOSEARCH_TRUST_INDEX=1` answers from the index without the check: for the benchmarks'
synthetic libraries, whose million photos have no files (the check costs k `stat` calls).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

# (how many hits) -> hits best first, each with .photo.path
Search = Callable[[int], list]


def live_hits(search: Search, k: int, same_as: str | None = None) -> list:
    """Up to `k` hits of `search` whose files exist (and are not the file `same_as`)."""
    if os.environ.get("PHOTOSEARCH_TRUST_INDEX") == "1":
        return [hit for hit in search(k + 1) if hit.photo.path != same_as][:k]
    own = _identity(same_as) if same_as else None
    fetch, seen = k, {}
    while True:
        hits = search(fetch)
        live = []
        for hit in hits:
            path = hit.photo.path
            if path not in seen:
                seen[path] = _identity(path, missing=None)
            identity = seen[path]
            if identity is not None and (own is None or identity != own):
                live.append(hit)
        if len(live) >= k or len(hits) < fetch:
            return live[:k]
        fetch = 2 * fetch + (fetch - len(live))  # more than were lost, so it ends quickly


@dataclass(frozen=True)
class FoldedHit:
    """One content among the results: its best-ranked photo, score, and byte-identical copies
    that the same search found (same content fingerprint, so the same vector and score)."""

    photo: object  # storage.PhotoRecord
    score: float
    copies: list = field(default_factory=list)  # PhotoRecords


def folded_hits(search: Search, k: int, same_as: str | None = None) -> list[FoldedHit]:
    """Up to `k` contents among the live hits of `search`, each with its copies folded under it
    (copies rank side by side, so fetching more finds the rest of a folded content)."""
    fetch = k + 1  # one more than asked: the k-th content is whole once another follows it
    while True:
        hits = live_hits(search, fetch, same_as)
        folded: dict[str, FoldedHit] = {}
        for hit in hits:
            first = folded.get(hit.photo.fingerprint)
            if first is None:
                folded[hit.photo.fingerprint] = FoldedHit(hit.photo, hit.score)
            else:
                first.copies.append(hit.photo)
        if len(folded) > k or len(hits) < fetch:
            return list(folded.values())[:k]
        fetch *= 2


def _identity(path: str, missing=("", 0)):
    """(device, inode) of `path`; `missing` when it is gone. Other errors (permissions) keep
    the hit: the file is there, we just may not read it."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return missing
    except OSError:
        return ("unknown", path)
    return (st.st_dev, st.st_ino)
