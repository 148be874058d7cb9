"""Schema versions and the step-by-step migrations between them.

``MIGRATIONS[v]`` upgrades a database from version ``v - 1`` to ``v`` (version 0 is an empty
file). Each step runs in its own transaction together with the ``schema_version`` bump, so a
crash mid-upgrade leaves the database at the previous version. A database newer than
``SCHEMA_VERSION`` is refused with :class:`SchemaError` rather than guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import SchemaError
from .meta_keys import SCHEMA_VERSION_KEY

if TYPE_CHECKING:  # SQLAlchemy is imported where it runs: `SCHEMA_VERSION` stays light to read
    from sqlalchemy import Connection, Engine


def _create_v1(conn: Connection) -> None:
    """Photos, their durable vectors, and the meta table."""
    conn.exec_driver_sql("CREATE TABLE meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL)")
    conn.exec_driver_sql(
        """
        CREATE TABLE photos (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            mtime FLOAT NOT NULL,
            fingerprint TEXT NOT NULL,
            width INTEGER,
            height INTEGER,
            indexed_at DATETIME,
            model_fingerprint TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            error TEXT
        )
        """
    )
    conn.exec_driver_sql("CREATE INDEX ix_photos_fingerprint ON photos (fingerprint)")
    conn.exec_driver_sql(
        """
        CREATE TABLE vectors (
            photo_id INTEGER PRIMARY KEY REFERENCES photos (id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        )
        """
    )


def _v1_to_v2(conn: Connection) -> None:
    """EXIF capture time, a (status, path) index, and the watched-roots table."""
    conn.exec_driver_sql("ALTER TABLE photos ADD COLUMN taken_at DATETIME")
    # Serves "indexed photos under this folder" as one index range, and status listings.
    conn.exec_driver_sql("CREATE INDEX ix_photos_status_path ON photos (status, path)")
    conn.exec_driver_sql(
        """
        CREATE TABLE roots (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            present BOOLEAN NOT NULL DEFAULT 1,
            added_at DATETIME NOT NULL
        )
        """
    )


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1, 2: _v1_to_v2}
SCHEMA_VERSION = max(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    """The version recorded in the database; 0 for an empty database."""
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("meta"):
        return 0
    raw = conn.execute(
        text("SELECT value FROM meta WHERE key = :k"), {"k": SCHEMA_VERSION_KEY}
    ).scalar()
    if raw is None:
        raise SchemaError(
            "the database has a meta table but no schema_version: not a photosearch library?"
        )
    try:
        return int(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"unreadable schema_version {raw!r} in the database") from exc


def check_version(version: int) -> None:
    """Raise :class:`SchemaError` if ``version`` is newer than this code understands."""
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"the library database has schema version {version}, but this photosearch only "
            f"understands up to version {SCHEMA_VERSION}; upgrade photosearch to open it"
        )


def migrate(engine: Engine) -> int:
    """Upgrade the database to ``SCHEMA_VERSION`` one step at a time; return the final version."""
    from sqlalchemy import text

    with engine.begin() as conn:
        version = schema_version(conn)
    check_version(version)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with engine.execution_options(photosearch_begin="IMMEDIATE").begin() as conn:
            if schema_version(conn) >= target:  # another process upgraded it meanwhile
                continue
            MIGRATIONS[target](conn)
            conn.execute(
                text("INSERT OR REPLACE INTO meta (key, value) VALUES (:k, :v)"),
                {"k": SCHEMA_VERSION_KEY, "v": json.dumps(target)},
            )
    return SCHEMA_VERSION


def require_current(engine: Engine) -> None:
    """For read-only use: the schema must be exactly this code's (no upgrade is possible)."""
    with engine.connect() as conn:
        version = schema_version(conn)
    check_version(version)
    if version < SCHEMA_VERSION:
        raise SchemaError(
            f"the library database needs a schema upgrade (v{version} to v{SCHEMA_VERSION}); "
            "open it once without read_only"
        )
