"""`photosearch duplicates`: photos held twice, so the user can choose which to keep.

Exact copies share a content fingerprint (the library stores one per photo). With `near`,
two photos are near-duplicates (the same photo resized, re-encoded, slightly cropped or
lightly edited) when both agree: their search vectors' cosine is at least `NEAR_COSINE`
(what the photo shows) and their perceptual hashes differ in at most `NEAR_HASH_BITS` of 64
bits (what it looks like). The vectors alone cannot tell a copy from another photo of the
same scene (two Flickr8k photos of one dog show reached 0.965, a 5%-cropped copy 0.915), nor
the hash alone two plain scenes apart. Candidate pairs come from each photo's nearest
neighbours (`storage.neighbours`, no comparison of every pair); confirmed pairs are joined
into groups by connected components (union-find). Each group lists its photos with their
size in bytes, pixels, taken-at and modification time, the largest first.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from photosearch.indexer.perceptual_hash import hash_distance

# Chosen on generated copies of the 51 demo photos among 1,000 other Flickr8k dev photos
# (benchmarks/duplicates.py, README "Duplicates"): copies (JPEG q60, 50%, 5% crop, +10%
# brightness) had cosines >= 0.915 and hash distances <= 12; different photos with a cosine
# >= 0.85 differed by >= 20 bits.
NEAR_COSINE = 0.85
NEAR_HASH_BITS = 16


def find_duplicates(lib, near: bool = False, min_cosine: float = NEAR_COSINE,
                    max_bits: int = NEAR_HASH_BITS) -> dict:
    """Groups of duplicates in an open library (read-only is enough).

    Returns {"near": bool, "min_cosine": float | None, "max_hash_bits": int | None,
    "unhashed": photos without a perceptual hash (indexed before it existed: `reindex`),
    "groups": [{"kind": "exact" | "near", "bytes": total size, "photos": [photo dicts
    (`_photo`), largest first]}]}, groups in order of their first photo's path. Without
    `near`, exact copies only; with it, a group holds near-identical photos and all their
    byte-identical copies.
    """
    copies = {group[0].fingerprint: group for group in lib.copy_groups()}
    groups = [("exact", group) for group in copies.values()]
    unhashed = 0
    if near:
        first, second, _ = lib.near_pairs(min_cosine)
        involved = np.unique(np.concatenate([first, second])).tolist() if len(first) else []
        records, hashes = lib.get_many(involved), lib.hashes_of(involved)
        unhashed = lib.count_unhashed()
        same = [(a, b) for a, b in zip(first.tolist(), second.tolist())
                if a in hashes and b in hashes and hash_distance(hashes[a], hashes[b]) <= max_bits]
        components = _components(np.array([a for a, _ in same], dtype=np.int64),
                                 np.array([b for _, b in same], dtype=np.int64))
        in_near = {records[pid].fingerprint for members in components for pid in members}
        groups = [("exact", group) for fp, group in copies.items() if fp not in in_near]
        groups += [("near", [r for pid in members for r in copies.get(records[pid].fingerprint, [records[pid]])])
                   for members in components]
    rows = []
    for kind, photos in groups:
        photos = sorted(photos, key=lambda r: (-(r.width or 0) * (r.height or 0), -r.size, r.path))
        rows.append({"kind": kind, "bytes": sum(r.size for r in photos), "photos": [_photo(r) for r in photos]})
    rows.sort(key=lambda g: min(p["path"] for p in g["photos"]))
    return {"near": near, "min_cosine": min_cosine if near else None,
            "max_hash_bits": max_bits if near else None, "unhashed": unhashed, "groups": rows}


def _photo(record) -> dict:
    modified = datetime.fromtimestamp(record.mtime, timezone.utc).isoformat(timespec="seconds")
    return {"path": record.path, "size": record.size, "width": record.width, "height": record.height,
            "taken_at": record.taken_at.isoformat() if record.taken_at else None, "modified": modified,
            "content": record.fingerprint[:16]}


def _components(first: np.ndarray, second: np.ndarray) -> list[list[int]]:
    """Connected components (each sorted, in order of their smallest id) of the graph whose
    edges are the pairs (first[i], second[i])."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for a, b in zip(first.tolist(), second.tolist()):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for x in parent:
        members.setdefault(root(x), []).append(x)
    return [sorted(m) for _, m in sorted(members.items())]
