"""Schema versions and the step-by-step migrations between them.

``MIGRATIONS[v]`` upgrades a database from version ``v - 1`` to ``v`` (version 0 is an empty
file). Each step runs in its own transaction together with the ``schema_version`` bump, so a
crash mid-upgrade leaves the database at the previous version. A database newer than
``SCHEMA_VERSION`` is refused with :class:`SchemaError` rather than guessed at.

A step listed in ``REBUILDS`` rebuilds a table that others reference (SQLite cannot change a
primary key in place): it runs with foreign keys off, as SQLite's own "12-step" procedure
says, so that dropping the old table does not cascade into its references, and the rows'
references are checked (``PRAGMA foreign_key_check``) before the step commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


PHOTO_COLUMNS = (
    "id, path, size, mtime, fingerprint, width, height, indexed_at, model_fingerprint, status, error, taken_at"
)


def _v2_to_v3(conn: Connection) -> None:
    """Photo ids are never handed out again: ``photos.id`` becomes AUTOINCREMENT.

    Without it SQLite gives a new photo max(id) + 1, so deleting the newest photo let the
    next one take its id, and an old ``/photo/ID`` link (or a cached thumbnail) showed
    another photo. The table is rebuilt keeping every id, so vectors (``vectors.photo_id``)
    and the FAISS file (keyed by photo id) stay as they are. Ids above the highest surviving
    one that were deleted before this upgrade left no trace and can still come back once.
    """
    conn.exec_driver_sql(
        """
        CREATE TABLE photos_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            mtime FLOAT NOT NULL,
            fingerprint TEXT NOT NULL,
            width INTEGER,
            height INTEGER,
            indexed_at DATETIME,
            model_fingerprint TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            error TEXT,
            taken_at DATETIME
        )
        """
    )
    conn.exec_driver_sql(f"INSERT INTO photos_v3 ({PHOTO_COLUMNS}) SELECT {PHOTO_COLUMNS} FROM photos")
    conn.exec_driver_sql("DROP TABLE photos")  # its indexes go with it
    conn.exec_driver_sql("ALTER TABLE photos_v3 RENAME TO photos")
    conn.exec_driver_sql("CREATE INDEX ix_photos_fingerprint ON photos (fingerprint)")
    conn.exec_driver_sql("CREATE INDEX ix_photos_status_path ON photos (status, path)")


def _v3_to_v4(conn: Connection) -> None:
    """Taken-at for every photo: the EXIF time where there was one, else the file's mtime.

    ``taken_at`` becomes the time a photo was taken as a local wall time for every row (the
    date filters and the gallery's order use it), ``taken_source`` says where it came from
    ("exif" or "mtime") and ``taken_offset`` is its UTC offset in minutes when known (EXIF
    OffsetTimeOriginal; for an mtime, this machine's offset at that moment). Rows with an EXIF
    time keep it (offset unknown: v3 did not read it); the others get their mtime.
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


def _v4_to_v5(conn: Connection) -> None:
    """Automatic tags (ImageNet classes) per photo, and each photo's perceptual hash (for
    near-duplicates). Photos indexed before have neither until `photosearch reindex` (the
    export that computes tags has its own model fingerprint)."""
    conn.exec_driver_sql(
        """
        CREATE TABLE hashes (
            photo_id INTEGER NOT NULL PRIMARY KEY REFERENCES photos (id) ON DELETE CASCADE,
            phash INTEGER NOT NULL
        )
        """
    )
    conn.exec_driver_sql(
        """
        CREATE TABLE tags (
            photo_id INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            probability FLOAT NOT NULL,
            PRIMARY KEY (photo_id, name)
        )
        """
    )
    conn.exec_driver_sql("CREATE INDEX ix_tags_name ON tags (name, photo_id)")

MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_v1, 2: _v1_to_v2, 3: _v2_to_v3, 4: _v3_to_v4, 5: _v4_to_v5,
}
REBUILDS = {3}  # steps that rebuild a referenced table: run with foreign keys off
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
        with _step(engine, foreign_keys=target not in REBUILDS) as conn:
            if schema_version(conn) >= target:  # another process upgraded it meanwhile
                continue
            MIGRATIONS[target](conn)
            conn.execute(
                text("INSERT OR REPLACE INTO meta (key, value) VALUES (:k, :v)"),
                {"k": SCHEMA_VERSION_KEY, "v": json.dumps(target)},
            )
            if not foreign_keys_hold(conn):
                raise SchemaError(f"upgrading the library to schema version {target} broke references")
    return SCHEMA_VERSION

@contextmanager
def _step(engine: Engine, foreign_keys: bool) -> Iterator[Connection]:
    """One migration step's write transaction, with foreign keys enforced or (for a table
    rebuild) off; the pragma only takes effect outside a transaction, hence the raw call."""
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        if not foreign_keys:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.execution_options(photosearch_begin="IMMEDIATE").begin():
                yield conn
        finally:
            if not foreign_keys:
                raw.execute("PRAGMA foreign_keys=ON")

def foreign_keys_hold(conn: Connection) -> bool:
    """True when every reference in the database points at an existing row."""
    return conn.exec_driver_sql("PRAGMA foreign_key_check").first() is None

def require_current(engine: Engine) -> None:
    """For read-only use: the schema must be exactly this code's (no upgrade is possible)."""
    with engine.connect() as conn:
        version = schema_version(conn)
    check_version(version)
    if version < SCHEMA_VERSION:
        raise SchemaError(
            f"the library was made by an older photosearch (schema v{version}, now v{SCHEMA_VERSION}): "
            "run `photosearch index` or `photosearch watch` once to upgrade it"
        )
