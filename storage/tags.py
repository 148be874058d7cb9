"""SQL operations on the ``tags`` table (all take an open session; none commit).

A tag is a name (an ImageNet class, "golden retriever") and its probability for one photo;
see ``miniclip.tags`` for where they come from. Names are stored lower case.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session

from .photos import CHUNK, under_clause
from .records import INDEXED
from .tables import PhotoRow, TagRow

Tags = list[tuple[str, float]]  # [(name, probability)], most probable first


def replace(session: Session, tags: Mapping[int, Tags]) -> None:
    """Photo id -> its tags: each photo's old tags are dropped, these stored."""
    ids = [int(pid) for pid in tags]
    for start in range(0, len(ids), CHUNK):
        session.execute(delete(TagRow).where(TagRow.photo_id.in_(ids[start:start + CHUNK])))
    rows = [{"photo_id": int(pid), "name": name.lower(), "probability": float(p)}
            for pid, pairs in tags.items() for name, p in dict(pairs).items()]
    if rows:
        session.execute(insert(TagRow), rows)


def of(session: Session, ids: Iterable[int]) -> dict[int, Tags]:
    """Photo id -> its tags, most probable first (photos without tags are left out)."""
    found: dict[int, Tags] = {}
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(TagRow.photo_id, TagRow.name, TagRow.probability)
            .where(TagRow.photo_id.in_(ids[start:start + CHUNK]))
            .order_by(TagRow.photo_id, TagRow.probability.desc(), TagRow.name))
        for pid, name, probability in rows:
            found.setdefault(pid, []).append((name, probability))
    return found


def counts(session: Session) -> list[tuple[str, int]]:
    """(name, indexed photos with it), most common first, then by name."""
    count = func.count()
    rows = session.execute(
        select(TagRow.name, count).join(PhotoRow, PhotoRow.id == TagRow.photo_id)
        .where(PhotoRow.status == INDEXED).group_by(TagRow.name).order_by(count.desc(), TagRow.name))
    return [(name, n) for name, n in rows]


def matches(tag: str, name: str) -> bool:
    """Whether asking for ``tag`` finds photos tagged ``name``: the same name, or a name that
    ends with it as a word ("elephant" finds "indian elephant"; any letter case)."""
    tag = tag.strip().lower()
    return name == tag or name.endswith(" " + tag)


def tagged_ids(session: Session, tag: str, under: str | os.PathLike[str] | None) -> np.ndarray:
    """Ids of indexed photos with a tag that ``matches`` ``tag``, inside ``under`` if given."""
    tag = tag.strip().lower()
    query = (select(TagRow.photo_id).distinct().join(PhotoRow, PhotoRow.id == TagRow.photo_id)
             .where(or_(TagRow.name == tag, TagRow.name.endswith(" " + tag, autoescape=True)),
                    PhotoRow.status == INDEXED))
    if under is not None:
        query = query.where(under_clause(under))
    return np.asarray(session.scalars(query).all(), dtype=np.int64)


def delete_all(session: Session) -> None:
    session.execute(delete(TagRow))
