"""ORM models of the *current* schema (the migrations in ``migrations.py`` create these tables).

Migrations are written in plain SQL so that they keep describing the past even when these
models change; ``tests/storage/test_migrations.py`` checks that both agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from .path_text import from_stored, to_stored


class PathText(TypeDecorator):
    """A ``String`` column holding file paths, any bytes included (see ``storage.path_text``)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else to_stored(value)

    def process_result_value(self, value, dialect):
        return None if value is None else from_stored(value)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    """Key/value settings of the library; values are JSON text."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


class PhotoRow(Base):
    __tablename__ = "photos"
    __table_args__ = (
        Index("ix_photos_status_path", "status", "path"),  # added in schema v2
        {"sqlite_autoincrement": True},  # schema v3: an id that left is never handed out again
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(PathText, unique=True)  # any file name, even non-UTF-8
    size: Mapped[int]
    mtime: Mapped[float]
    fingerprint: Mapped[str] = mapped_column(String, index=True)
    width: Mapped[int | None]
    height: Mapped[int | None]
    indexed_at: Mapped[datetime | None]
    model_fingerprint: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    error: Mapped[str | None] = mapped_column(PathText)  # reasons may quote file names
    taken_at: Mapped[datetime | None] = mapped_column(index=True)  # added in v2; index in v4
    taken_offset: Mapped[int | None]  # added in schema v4: minutes east of UTC, if known
    taken_source: Mapped[str | None] = mapped_column(String)  # added in v4: "exif" or "mtime"


class VectorRow(Base):
    """Durable copy of a photo's search vector (little-endian float32 bytes)."""

    __tablename__ = "vectors"

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class RootRow(Base):
    """A watched root folder (schema v2)."""

    __tablename__ = "roots"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(PathText, unique=True)
    present: Mapped[bool] = mapped_column(Boolean)
    added_at: Mapped[datetime]


class HashRow(Base):
    """A photo's 64-bit perceptual hash (signed), for near-duplicates (schema v5)."""

    __tablename__ = "hashes"

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    phash: Mapped[int]


class TagRow(Base):
    """An automatic tag of a photo: an ImageNet class its image tower saw, with its probability
    (schema v5). Written with the photo's vector, by the same model."""

    __tablename__ = "tags"
    __table_args__ = (Index("ix_tags_name", "name", "photo_id"),)

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String, primary_key=True)
    probability: Mapped[float] = mapped_column(Float)
