"""FunctionStore: the library of functions in one SQLite file."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import apsw

from .errors import NotFoundError, StoreError
from .libfile import BUSY_TIMEOUT_MS, check_library_file, pragma_int
from .migrations import migrate, schema_version
from .signature import Tier

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 2.0
"""Call counts are written at most this often during a session, and on close."""

ROW_CACHE_SIZE = 4_096
"""Rows of exact-hit lookups kept in memory; see FunctionStore.get."""

FUNCTION_COLUMNS = (
    "id, name, signature, tier, description, wat, wasm, compiled, compiled_tag, shader, "
    "created_at, last_used_at, call_count, verified"
)


@dataclass
class TestCase:
    """One model-written test: inputs, expected outputs and the last outcome."""

    __test__ = False  # not a pytest test class, despite the name

    inputs: list[Any]
    expected: list[Any]
    passed: bool = False
    actual: list[Any] | None = None


@dataclass
class FunctionRecord:
    """One stored function; ``signature`` is the text form, e.g. ``(i32, i32) -> i32``."""

    name: str
    signature: str
    tier: Tier
    description: str
    wat: str
    wasm: bytes = field(repr=False)
    verified: bool = False
    shader: str | None = None
    compiled: bytes | None = field(default=None, repr=False)
    compiled_tag: bytes | None = field(default=None, repr=False)
    id: int | None = None
    created_at: float = field(default_factory=time.time)
    last_used_at: float | None = None
    call_count: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.signature, str(self.tier))


def _record_from_row(row: tuple[Any, ...]) -> FunctionRecord:
    return FunctionRecord(
        id=row[0],
        name=row[1],
        signature=row[2],
        tier=Tier(row[3]),
        description=row[4],
        wat=row[5],
        wasm=bytes(row[6]),
        compiled=bytes(row[7]) if row[7] is not None else None,
        compiled_tag=bytes(row[8]) if row[8] is not None else None,
        shader=row[9],
        created_at=row[10],
        last_used_at=row[11],
        call_count=row[12],
        verified=bool(row[13]),
    )


class FunctionStore:
    """The library file: functions, their test cases and aliases.

    Opening checks that the file is a qt45 library before anything is
    written: a foreign file, a newer schema or a read-only file raises
    StoreError and the file is left untouched. An older schema is migrated.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            check_library_file(self.path)
        except OSError as exc:
            raise StoreError(
                f"cannot read library {str(self.path)!r}: {exc.strerror or exc}; check the path "
                "and its permissions"
            ) from exc
        try:
            self.conn = apsw.Connection(str(self.path))
        except apsw.Error as exc:
            raise StoreError(f"cannot open library {str(self.path)!r}: {exc}") from exc
        self.conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        self._lock = threading.RLock()
        self._pending_calls: dict[int, tuple[int, float]] = {}
        self._local_commits = 0
        self._row_cache: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self._row_cache_version: tuple[int, int] | None = None
        self._last_flush = time.monotonic()
        try:
            self._prepare()
        except apsw.Error as exc:
            self.conn.close()
            raise StoreError(f"cannot use library {str(self.path)!r}: {exc}") from exc

    # -- opening -------------------------------------------------------

    def _prepare(self) -> None:
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        current = pragma_int(self.conn, "PRAGMA user_version")
        if current < schema_version():
            migrate(self.conn, current)

    # -- transactions --------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[apsw.Connection]:
        """Run the body in one ``BEGIN IMMEDIATE`` transaction, taking the write lock up front.

        Taking the lock before the first read means a read followed by a
        write cannot interleave with another process's write. SQLite errors
        become StoreError, and any exception rolls the transaction back.
        """
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except apsw.BusyError as exc:
                raise StoreError(
                    f"library {str(self.path)!r} stayed locked by another process for "
                    f"{BUSY_TIMEOUT_MS / 1000:.0f} s; try again"
                ) from exc
            except apsw.Error as exc:
                raise self._sqlite_error(exc) from exc
            try:
                yield self.conn
                self.conn.execute("COMMIT")
                self._local_commits += 1
            except BaseException as exc:
                # SQLite rolls back by itself after some errors (a full disk, I/O errors).
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, apsw.Error):
                    raise self._sqlite_error(exc) from exc
                raise

    def _query(self, sql: str, bindings: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self.conn.execute(sql, bindings).fetchall()
            except apsw.Error as exc:
                raise self._sqlite_error(exc) from exc

    def _sqlite_error(self, exc: apsw.Error) -> StoreError:
        if isinstance(exc, apsw.CorruptError):
            return StoreError(
                f"library {str(self.path)!r} is damaged ({exc}); restore it from a backup, or "
                "start a new library with another --db"
            )
        if isinstance(exc, apsw.BusyError):
            return StoreError(
                f"library {str(self.path)!r} stayed locked by another process for "
                f"{BUSY_TIMEOUT_MS / 1000:.0f} s; try again"
            )
        if isinstance(exc, apsw.ReadOnlyError):
            return StoreError(
                f"library {str(self.path)!r} became read-only; make it writable and try again"
            )
        return StoreError(f"library {str(self.path)!r} failed: {exc}")

    def query(self, sql: str, bindings: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement under the store's lock and return every row."""
        return self._query(sql, bindings)

    def records(self, ids: list[int]) -> dict[int, FunctionRecord]:
        """Return the functions with these ids, keyed by id; ids not stored are left out."""
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = self._query(
            f"SELECT {FUNCTION_COLUMNS} FROM functions WHERE id IN ({marks})", tuple(ids)
        )
        return {row[0]: self._with_pending(_record_from_row(row)) for row in rows}

    # -- functions -----------------------------------------------------

    def get(self, name: str, signature: str, tier: Tier | str) -> FunctionRecord | None:
        """Return the function stored under exactly this name, signature and tier.

        Rows found are kept in memory until any connection writes to the file,
        so repeated cache hits skip the query.
        """
        key = (name, signature, str(tier))
        version = self._version()
        if version != self._row_cache_version:
            self._row_cache.clear()
            self._row_cache_version = version
        row = self._row_cache.get(key)
        if row is None:
            rows = self._query(
                f"SELECT {FUNCTION_COLUMNS} FROM functions WHERE name = ? AND signature = ? "
                "AND tier = ?",
                key,
            )
            if not rows:
                return None
            row = rows[0]
            if len(self._row_cache) < ROW_CACHE_SIZE:
                self._row_cache[key] = row
        return self._with_pending(_record_from_row(row))

    def _version(self) -> tuple[int, int]:
        """Change count of the file: other connections' commits, then this one's."""
        with self._lock:
            return (self.conn.data_version(), self._local_commits)

    def get_by_id(self, function_id: int) -> FunctionRecord | None:
        rows = self._query(f"SELECT {FUNCTION_COLUMNS} FROM functions WHERE id = ?", (function_id,))
        return self._with_pending(_record_from_row(rows[0])) if rows else None

    def find_by_name(self, name: str) -> list[FunctionRecord]:
        """Return every function stored under ``name``, whatever its signature."""
        rows = self._query(
            f"SELECT {FUNCTION_COLUMNS} FROM functions WHERE name = ? ORDER BY id", (name,)
        )
        return [self._with_pending(_record_from_row(row)) for row in rows]

    def list_functions(self) -> list[FunctionRecord]:
        rows = self._query(f"SELECT {FUNCTION_COLUMNS} FROM functions ORDER BY id")
        return [self._with_pending(_record_from_row(row)) for row in rows]

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM functions")[0][0])

    def save(self, record: FunctionRecord, tests: list[TestCase]) -> int:
        """Store a function together with its test cases, in one transaction; returns its id.

        Another process may have stored the same name, signature and tier
        since this one was looked up. That row then keeps its id, call count
        and aliases and takes the new code. A verified row is never replaced
        by an unverified function: it is kept, and its id returned.
        """
        with self.write() as conn:
            existing = conn.execute(
                "SELECT id, verified FROM functions WHERE name = ? AND signature = ? AND tier = ?",
                record.key,
            ).fetchall()
            if existing and existing[0][1] and not record.verified:
                function_id = cast(int, existing[0][0])
                log.info("kept verified %s stored by another process", record.name)
                record.id = function_id
                return function_id
            if existing:
                function_id = cast(int, existing[0][0])
                self._update_code(conn, function_id, record)
                conn.execute("DELETE FROM test_cases WHERE function_id = ?", (function_id,))
            else:
                function_id = self._insert(conn, record)
            self._insert_tests(conn, function_id, tests)
        record.id = function_id
        return function_id

    def _insert(self, conn: apsw.Connection, record: FunctionRecord) -> int:
        conn.execute(
            "INSERT INTO functions (name, signature, tier, description, wat, wasm, compiled, "
            "compiled_tag, shader, created_at, last_used_at, call_count, verified) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.name,
                record.signature,
                str(record.tier),
                record.description,
                record.wat,
                record.wasm,
                record.compiled,
                record.compiled_tag,
                record.shader,
                record.created_at,
                record.last_used_at,
                record.call_count,
                int(record.verified),
            ),
        )
        return int(conn.last_insert_rowid())

    def _update_code(self, conn: apsw.Connection, function_id: int, record: FunctionRecord) -> None:
        conn.execute(
            "UPDATE functions SET description = ?, wat = ?, wasm = ?, compiled = ?, "
            "compiled_tag = ?, shader = ?, verified = ? WHERE id = ?",
            (
                record.description,
                record.wat,
                record.wasm,
                record.compiled,
                record.compiled_tag,
                record.shader,
                int(record.verified),
                function_id,
            ),
        )

    def _insert_tests(self, conn: apsw.Connection, function_id: int, tests: list[TestCase]) -> None:
        for case in tests:
            conn.execute(
                "INSERT INTO test_cases (function_id, inputs, expected, actual, passed) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    function_id,
                    _dump(case.inputs),
                    _dump(case.expected),
                    None if case.actual is None else _dump(case.actual),
                    int(case.passed),
                ),
            )

    def update_compiled(self, function_id: int, compiled: bytes | None, tag: bytes | None) -> None:
        """Replace the cached native code of a function (None clears it)."""
        with self.write() as conn:
            conn.execute(
                "UPDATE functions SET compiled = ?, compiled_tag = ? WHERE id = ?",
                (compiled, tag, function_id),
            )

    def delete(self, name: str, signature: str | None = None) -> int:
        """Delete every function called ``name`` (or only the one with ``signature``)."""
        with self.write() as conn:
            if signature is None:
                conn.execute("DELETE FROM functions WHERE name = ?", (name,))
            else:
                conn.execute(
                    "DELETE FROM functions WHERE name = ? AND signature = ?", (name, signature)
                )
            deleted = int(conn.changes())
        if deleted == 0 and signature is not None and self.find_by_name(name):
            raise NotFoundError(
                f"no function named {name!r} with signature {signature} in the library; "
                f"see .info {name} for its signatures"
            )
        if deleted == 0:
            raise NotFoundError(f"no function named {name!r} in the library; see .list")
        return deleted

    def tests(self, function_id: int) -> list[TestCase]:
        rows = self._query(
            "SELECT inputs, expected, actual, passed FROM test_cases WHERE function_id = ? "
            "ORDER BY id",
            (function_id,),
        )
        return [
            TestCase(
                inputs=_load(row[0]),
                expected=_load(row[1]),
                actual=None if row[2] is None else _load(row[2]),
                passed=bool(row[3]),
            )
            for row in rows
        ]

    # -- aliases -------------------------------------------------------

    def add_alias(self, name: str, signature: str, tier: Tier | str, function_id: int) -> None:
        """Remember that requests for ``name`` with ``signature`` are served by ``function_id``."""
        with self.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO aliases (name, signature, tier, function_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, signature, str(tier), function_id, time.time()),
            )

    def resolve_alias(self, name: str, signature: str, tier: Tier | str) -> FunctionRecord | None:
        rows = self._query(
            "SELECT function_id FROM aliases WHERE name = ? AND signature = ? AND tier = ?",
            (name, signature, str(tier)),
        )
        return self.get_by_id(rows[0][0]) if rows else None

    def alias_targets(self, name: str) -> list[tuple[str, FunctionRecord]]:
        """Return (signature, function) for every alias called ``name``."""
        rows = self._query(
            "SELECT signature, function_id FROM aliases WHERE name = ? ORDER BY created_at", (name,)
        )
        found = [(row[0], self.get_by_id(row[1])) for row in rows]
        return [(signature, record) for signature, record in found if record is not None]

    def aliases(self, function_id: int) -> list[str]:
        rows = self._query(
            "SELECT name FROM aliases WHERE function_id = ? ORDER BY created_at", (function_id,)
        )
        return [row[0] for row in rows]

    # -- call counts ---------------------------------------------------

    def record_call(self, function_id: int) -> None:
        """Count one call; counts are written in batches (see ``flush``)."""
        with self._lock:
            count, _ = self._pending_calls.get(function_id, (0, 0.0))
            self._pending_calls[function_id] = (count + 1, time.time())
            due = time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S
        if due:
            self.flush()

    def flush(self) -> None:
        """Write pending call counts in one transaction."""
        with self._lock:
            pending, self._pending_calls = self._pending_calls, {}
            self._last_flush = time.monotonic()
            if not pending:
                return
            try:
                with self.write() as conn:
                    for function_id, (count, used_at) in pending.items():
                        conn.execute(
                            "UPDATE functions SET call_count = call_count + ?, last_used_at = ? "
                            "WHERE id = ?",
                            (count, used_at, function_id),
                        )
            except (StoreError, apsw.Error):
                for function_id, value in pending.items():
                    self._pending_calls.setdefault(function_id, value)
                raise

    def _with_pending(self, record: FunctionRecord) -> FunctionRecord:
        pending = self._pending_calls.get(record.id or -1)
        if pending is not None:
            record.call_count += pending[0]
            record.last_used_at = pending[1]
        return record

    def integrity_check(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0][0])

    def close(self) -> None:
        """Flush call counts and close the file."""
        if getattr(self, "conn", None) is None:
            return
        try:
            self.flush()
        finally:
            self.conn.close()
            self.conn = None  # type: ignore[assignment]


def _dump(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def _load(text: str) -> Any:
    return json.loads(text)


def tier_filters(tier: str | None, signature: str | None) -> tuple[str, list[object]]:
    """Return SQL conditions on ``f.tier`` and ``f.signature`` (each `` AND …``) and their bindings."""
    filters = ""
    bindings: list[object] = []
    if tier is not None:
        filters += " AND f.tier = ?"
        bindings.append(tier)
    if signature is not None:
        filters += " AND f.signature = ?"
        bindings.append(signature)
    return filters, bindings
