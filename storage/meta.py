"""The ``meta`` key/value table. Values are stored as JSON text and returned decoded.

Keys that storage maintains itself (``RESERVED``) can be read by anyone but written only here.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.orm import Session

from .errors import StorageError
from .meta_keys import GENERATION, RESERVED, SCHEMA_VERSION_KEY, VECTOR_DIM  # noqa: F401 (re-exported)
from .tables import MetaRow



def get(session: Session, key: str, default: Any = None) -> Any:
    raw = session.scalar(select(MetaRow.value).where(MetaRow.key == key))
    return default if raw is None else json.loads(raw)


def put(session: Session, key: str, value: Any) -> None:
    try:
        encoded = json.dumps(value)
    except TypeError as exc:
        raise StorageError(f"meta value for {key!r} is not JSON-serialisable: {exc}") from exc
    stmt = insert(MetaRow).values(key=key, value=encoded)
    stmt = stmt.on_conflict_do_update(index_elements=[MetaRow.key], set_={"value": encoded})
    session.execute(stmt)


def remove(session: Session, key: str) -> None:
    session.execute(delete(MetaRow).where(MetaRow.key == key))


def bump_generation(session: Session) -> int:
    generation = int(get(session, GENERATION, 0)) + 1
    put(session, GENERATION, generation)
    return generation
