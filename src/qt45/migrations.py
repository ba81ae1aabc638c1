"""Numbered schema migrations of the library file.

The schema version lives in ``PRAGMA user_version``. Each migration runs in
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


def _v2_keyword_index(conn: apsw.Connection) -> None:
    """Add the FTS5 index over name, description and signature, kept in sync by triggers.

    The triggers run inside the statement that changes ``functions``, so the
    index changes in the same transaction as the row. ``rebuild`` fills the
    index from the rows a version-1 file already holds.
    """
    conn.execute(
        """
        CREATE VIRTUAL TABLE functions_fts USING fts5(
            name, description, signature,
            content = 'functions', content_rowid = 'id',
            tokenize = 'porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER functions_fts_insert AFTER INSERT ON functions BEGIN
            INSERT INTO functions_fts (rowid, name, description, signature)
            VALUES (new.id, new.name, new.description, new.signature);
        END;
        CREATE TRIGGER functions_fts_delete AFTER DELETE ON functions BEGIN
            INSERT INTO functions_fts (functions_fts, rowid, name, description, signature)
            VALUES ('delete', old.id, old.name, old.description, old.signature);
        END;
        CREATE TRIGGER functions_fts_update AFTER UPDATE OF name, description, signature
        ON functions BEGIN
            INSERT INTO functions_fts (functions_fts, rowid, name, description, signature)
            VALUES ('delete', old.id, old.name, old.description, old.signature);
            INSERT INTO functions_fts (rowid, name, description, signature)
            VALUES (new.id, new.name, new.description, new.signature);
        END;
        INSERT INTO functions_fts (functions_fts) VALUES ('rebuild');
        """
    )


def _v3_embeddings(conn: apsw.Connection) -> None:
    """Add embedding vectors, one per function and model, and an index for structural filters.

    A deleted function's vectors stay with ``function_id`` NULL until the
    next search, so that a function stored again with the same text takes
    its vector back instead of being embedded again. Vectors are filled in
    lazily by the search, which also backfills files from older versions.
    """
    conn.execute(
        """
        CREATE TABLE embeddings (
            id INTEGER PRIMARY KEY,
            function_id INTEGER,
            model TEXT NOT NULL,
            dimension INTEGER NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (function_id, model)
        );
        CREATE INDEX embeddings_text ON embeddings (model, text_hash);
        CREATE INDEX functions_tier_signature ON functions (tier, signature);
        CREATE TRIGGER functions_release_embeddings AFTER DELETE ON functions BEGIN
            UPDATE embeddings SET function_id = NULL WHERE function_id = old.id;
        END;
        """
    )


MIGRATIONS: list[Migration] = [_v1_initial, _v2_keyword_index, _v3_embeddings]
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
