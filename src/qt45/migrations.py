"""Numbered schema migrations of the library file.

The schema version lives in ``PRAGMA user_version``; each migration runs in
one transaction together with the version bump, so a crash leaves either the
old or the new schema.
"""

from __future__ import annotations

from collections.abc import Callable

import apsw

APPLICATION_ID = 0x71743435  # "qt45" in ASCII, marks a file as a qt45 library

Migration = Callable[[apsw.Connection], None]


def _v1_initial(conn: apsw.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE functions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            signature TEXT NOT NULL,
            tier TEXT NOT NULL,
            description TEXT NOT NULL,
            wat TEXT NOT NULL,
            wasm BLOB NOT NULL,
            compiled BLOB,
            compiled_tag BLOB,
            shader TEXT,
            created_at REAL NOT NULL,
            last_used_at REAL,
            call_count INTEGER NOT NULL DEFAULT 0,
            verified INTEGER NOT NULL DEFAULT 0,
            UNIQUE (name, signature, tier)
        );
        CREATE TABLE test_cases (
            id INTEGER PRIMARY KEY,
            function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
            inputs TEXT NOT NULL,
            expected TEXT NOT NULL,
            actual TEXT,
            passed INTEGER NOT NULL
        );
        CREATE INDEX test_cases_function ON test_cases(function_id);
        CREATE TABLE aliases (
            name TEXT NOT NULL,
            signature TEXT NOT NULL,
            tier TEXT NOT NULL,
            function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            PRIMARY KEY (name, signature, tier)
        );
        """
    )


MIGRATIONS: list[Migration] = [_v1_initial]
"""Migration ``i`` brings the schema from version ``i`` to ``i + 1``."""


def schema_version() -> int:
    """Return the schema version this qt45 writes."""
    return len(MIGRATIONS)


def migrate(conn: apsw.Connection, current: int) -> None:
    """Apply every migration above ``current``, each in its own transaction."""
    for version in range(current, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
