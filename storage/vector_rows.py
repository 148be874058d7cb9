"""The durable copy of every search vector: ``vectors`` rows of little-endian float32 bytes.

SQLite is the source of truth; the FAISS index is built from these rows when it is missing or
corrupt, and caught up with them when it is stale (``storage.index_build``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.orm import Session

from .errors import DimensionError, StorageError
from .photos import CHUNK
from .tables import VectorRow

DTYPE = np.dtype("<f4")
CHUNK_ROWS = 2048  # rows streamed at a time: ~5 MB of 640-d vectors, twice that while decoded


def as_matrix(vectors: list[np.ndarray]) -> np.ndarray:
    """Stack 1-D vectors of one shared dimension into a finite float32 ``(N, D)`` matrix."""
    shapes = {np.shape(v) for v in vectors}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise DimensionError(f"vectors must be 1-D with one shared dimension, got {sorted(shapes)}")
    matrix = np.ascontiguousarray(np.stack(vectors), dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise StorageError("vectors contain NaN or infinite values")
    return matrix


def encode(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=DTYPE).tobytes()


def decode(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=DTYPE).astype(np.float32)


def ids_with_vectors(session: Session, ids: list[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        found.update(
            session.scalars(
                select(VectorRow.photo_id).where(VectorRow.photo_id.in_(ids[start : start + CHUNK]))
            )
        )
    return found


def upsert_many(session: Session, ids: list[int], vectors: np.ndarray) -> None:
    """Insert or replace the vectors of ``ids`` (``vectors`` is ``(len(ids), D)``)."""
    stmt = insert(VectorRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=[VectorRow.photo_id], set_={"vector": stmt.excluded.vector}
    )
    rows = [{"photo_id": pid, "vector": encode(vec)} for pid, vec in zip(ids, vectors)]
    session.connection().execute(stmt, rows)  # one executemany, no ORM bookkeeping


def delete_one(session: Session, pid: int) -> bool:
    return session.execute(delete(VectorRow).where(VectorRow.photo_id == pid)).rowcount > 0


def delete_all(session: Session) -> None:
    session.execute(delete(VectorRow))


def load_one(session: Session, pid: int) -> np.ndarray | None:
    blob = session.scalar(select(VectorRow.vector).where(VectorRow.photo_id == pid))
    return None if blob is None else decode(blob)


def load_all(session: Session) -> tuple[np.ndarray, np.ndarray | None]:
    """``(ids, vectors)`` sorted by id; ``vectors`` is ``(n, D)``, or None when there are none.
    Streamed into arrays allocated once (call inside one read transaction)."""
    total = count(session)
    ids, vectors, done = np.empty(total, dtype=np.int64), None, 0
    for chunk_ids, chunk in stream(session):
        if vectors is None:
            vectors = np.empty((total, chunk.shape[1]), dtype=np.float32)
        ids[done : done + len(chunk_ids)], vectors[done : done + len(chunk_ids)] = chunk_ids, chunk
        done += len(chunk_ids)
    return ids[:done], None if vectors is None else vectors[:done]


def stream(session: Session, chunk: int = CHUNK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every ``(ids, vectors)`` by id, ``chunk`` rows at a time: int64 ``(n,)``, float32
    ``(n, D)``. Only one chunk is in memory at once; within one session (one snapshot) two
    passes see the same rows in the same order."""
    result = session.execute(
        select(VectorRow.photo_id, VectorRow.vector)
        .order_by(VectorRow.photo_id)
        .execution_options(yield_per=chunk)
    )
    for rows in result.partitions():
        ids = np.fromiter((pid for pid, _ in rows), dtype=np.int64, count=len(rows))
        flat = np.frombuffer(b"".join(blob for _, blob in rows), dtype=DTYPE)
        yield ids, flat.reshape(len(rows), -1).astype(np.float32, copy=False)


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(VectorRow)) or 0
