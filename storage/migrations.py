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


def _v2_to_v3(conn: Connection) -> None:
    """Taken-at for every photo: the EXIF time where there was one, else the file's mtime.

    ``taken_at`` becomes the time a photo was taken as a local wall time for every row (the
    date filters and the gallery's order use it), ``taken_source`` says where it came from
    ("exif" or "mtime") and ``taken_offset`` is its UTC offset in minutes when known (EXIF
    OffsetTimeOriginal; for an mtime, this machine's offset at that moment). Rows of v2 with
    an EXIF time keep it (offset unknown: v2 did not read it); the others get their mtime.
    """
    conn.exec_driver_sql("ALTER TABLE photos ADD COLUMN taken_offset INTEGER")
    conn.exec_driver_sql("ALTER TABLE photos ADD COLUMN taken_source TEXT")
    conn.exec_driver_sql("UPDATE photos SET taken_source = 'exif' WHERE taken_at IS NOT NULL")
    local = "datetime(mtime, 'unixepoch', 'localtime')"
    conn.exec_driver_sql(
        f"""
        UPDATE photos SET taken_source = 'mtime', taken_at = {local} || '.000000',
            taken_offset = CAST(ROUND((julianday({local}) - julianday(mtime, 'unixepoch')) * 1440) AS INTEGER)
        WHERE taken_at IS NULL
        """
    )
    # Serves "newest first" (the gallery) and date ranges as one index scan.
    conn.exec_driver_sql("CREATE INDEX ix_photos_taken_at ON photos (taken_at)")


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1, 2: _v1_to_v2, 3: _v2_to_v3}
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
