"""Checks of a library file before it is opened for writing, so a wrong file is never changed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import apsw

from .errors import StoreError
from .migrations import APPLICATION_ID, schema_version

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000
"""How long a connection waits for another process's write lock."""


def check_library_file(path: Path) -> None:
    """Check ``path`` before SQLite opens it for writing; raises StoreError and changes nothing.

    A missing file in a writable folder and an empty file pass. A folder, a
    file that is not SQLite, an SQLite file of another application, a newer
    schema, a damaged file, a read-only file and a folder without write
    permission (SQLite keeps its WAL files there) are rejected.
    """
    parent = path.parent if str(path.parent) else Path(".")
    if not path.exists():
        if not parent.is_dir():
            raise StoreError(
                f"cannot create library {str(path)!r}: folder {str(parent)!r} does not exist"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(
                f"cannot create library {str(path)!r}: folder {str(parent)!r} is not "
                "writable; choose a path in a writable folder with --db or QT45_DB"
            )
        return
    if path.is_dir():
        raise StoreError(f"library path {str(path)!r} is a folder; give a file path")
    if path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise StoreError(
            f"{str(path)!r} is not a qt45 library (not an SQLite database); "
            "it was left untouched. Choose another file with --db or QT45_DB."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(
            f"library {str(path)!r} is in a folder that is not writable, and qt45 "
            "keeps its write-ahead log (-wal and -shm files) next to the library; it was "
            "left untouched. Copy it to a writable folder and pass the copy with --db."
        )
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    wal_existed, shm_existed = wal.exists(), shm.exists()
    try:
        _read_identity(path)
        if not _is_writable(path):
            raise StoreError(
                f"library {str(path)!r} is read-only; it was left untouched. "
                "Make it writable or copy it and pass the copy with --db."
            )
    except StoreError:
        _remove_new_side_files(wal, shm, wal_existed, shm_existed)
        raise


def _read_identity(path: Path) -> None:
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        raise StoreError(f"cannot open library {str(path)!r}: {exc}") from exc
    try:
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        app_id = pragma_int(conn, "PRAGMA application_id")
        version = pragma_int(conn, "PRAGMA user_version")
        tables = pragma_int(conn, "SELECT count(*) FROM sqlite_schema")
    except apsw.CorruptError as exc:
        raise StoreError(
            f"{str(path)!r} is a damaged SQLite file ({exc}), for example truncated by "
            "an interrupted copy; it was left untouched. Restore it from a backup or choose "
            "another file with --db or QT45_DB."
        ) from exc
    except apsw.Error as exc:
        raise StoreError(
            f"{str(path)!r} is not a readable qt45 library ({exc}); it was left "
            "untouched. Choose another file with --db or QT45_DB."
        ) from exc
    finally:
        conn.close()
    if app_id != APPLICATION_ID and tables > 0:
        raise StoreError(
            f"{str(path)!r} is an SQLite database but not a qt45 library; it was left "
            "untouched. Choose another file with --db or QT45_DB."
        )
    if version > schema_version():
        raise StoreError(
            f"library {str(path)!r} has schema version {version}, newer than this "
            f"qt45 supports ({schema_version()}); it was left untouched. Upgrade qt45."
        )


def _is_writable(path: Path) -> bool:
    """Return False if ``path`` has no write permission bit or this process may not write it.

    The mode bits are checked too because ``os.access`` reports every file as
    writable to root, and a file marked read-only should stay unchanged.
    """
    return bool(path.stat().st_mode & 0o222) and os.access(path, os.W_OK)


def _remove_new_side_files(wal: Path, shm: Path, wal_existed: bool, shm_existed: bool) -> None:
    """Remove the WAL side files that a rejected file's read-only check created.

    A read-only connection to a WAL-mode file creates an empty ``-wal`` and a
    ``-shm`` index. They are removed only if they were new and the WAL is still
    empty, so a file that another process opened meanwhile keeps its WAL.
    """
    try:
        if not wal_existed and wal.exists() and wal.stat().st_size == 0:
            wal.unlink()
        if not shm_existed and shm.exists() and not wal.exists():
            shm.unlink()
    except OSError as exc:
        log.info("could not remove side files of a rejected library: %s", exc)


def pragma_int(conn: apsw.Connection, sql: str) -> int:
    value = conn.execute(sql).fetchall()[0][0]
    return int(value) if isinstance(value, int) else 0
