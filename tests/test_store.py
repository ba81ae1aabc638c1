"""FunctionStore: identity, transactions, call counts, file checks and migrations."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import apsw
import pytest

from qt45 import FunctionRecord, FunctionStore, NotFoundError, StoreError, TestCase, Tier
from qt45.migrations import APPLICATION_ID, MIGRATIONS, schema_version


def record(name: str = "add", signature: str = "(i32, i32) -> i32") -> FunctionRecord:
    return FunctionRecord(
        name=name,
        signature=signature,
        tier=Tier.SCALAR,
        description="adds",
        wat="(module)",
        wasm=b"\0asm\1\0\0\0",
        verified=True,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_name_two_signatures_are_two_functions(db_path: Path) -> None:
    with_store = FunctionStore(db_path)
    with_store.save(record(signature="(i32, i32) -> i32"), [])
    with_store.save(record(signature="(f64, f64) -> f64"), [])

    found = with_store.find_by_name("add")

    assert [f.signature for f in found] == ["(i32, i32) -> i32", "(f64, f64) -> f64"]
    assert with_store.get("add", "(f64, f64) -> f64", Tier.SCALAR) is not None
    assert with_store.get("add", "(i64) -> i64", Tier.SCALAR) is None
    with_store.close()


def test_save_replaces_and_keeps_tests(db_path: Path) -> None:
    store = FunctionStore(db_path)
    store.save(record(), [TestCase([1, 2], [3], passed=True, actual=[3])])
    function_id = store.save(record(), [TestCase([2, 2], [4], passed=False, actual=[5])])

    tests = store.tests(function_id)

    assert store.count() == 1
    assert [(t.inputs, t.expected, t.actual, t.passed) for t in tests] == [
        ([2, 2], [4], [5], False)
    ]
    store.close()


def test_call_counts_are_batched_and_flushed_on_close(db_path: Path) -> None:
    store = FunctionStore(db_path)
    function_id = store.save(record(), [])
    for _ in range(5):
        store.record_call(function_id)

    seen_by_other = (
        sqlite3.connect(db_path).execute("SELECT call_count FROM functions").fetchone()[0]
    )
    assert store.get("add", "(i32, i32) -> i32", Tier.SCALAR).call_count == 5  # type: ignore[union-attr]
    store.close()
    reopened = FunctionStore(db_path)

    assert seen_by_other == 0
    assert reopened.get_by_id(function_id).call_count == 5  # type: ignore[union-attr]
    reopened.close()


def test_delete(db_path: Path) -> None:
    store = FunctionStore(db_path)
    function_id = store.save(record(), [TestCase([1, 2], [3])])

    assert store.delete("add") == 1
    assert store.tests(function_id) == []
    with pytest.raises(NotFoundError, match="no function named 'add'"):
        store.delete("add")
    store.close()


def test_aliases(db_path: Path) -> None:
    store = FunctionStore(db_path)
    function_id = store.save(record(), [])
    store.add_alias("sum", "(i32, i32) -> i32", Tier.SCALAR, function_id)

    target = store.resolve_alias("sum", "(i32, i32) -> i32", Tier.SCALAR)

    assert target is not None and target.name == "add"
    assert store.aliases(function_id) == ["sum"]
    assert store.resolve_alias("sum", "(i64, i64) -> i64", Tier.SCALAR) is None
    store.close()


def test_wal_mode_and_identity(db_path: Path) -> None:
    FunctionStore(db_path).close()
    conn = sqlite3.connect(db_path)

    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema_version()


def test_not_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n" * 100)
    before = digest(path)

    with pytest.raises(StoreError, match="is not a qt45 library \\(not an SQLite database\\)"):
        FunctionStore(path)

    assert digest(path) == before


def test_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    before = digest(path)

    with pytest.raises(StoreError, match="an SQLite database but not a qt45 library"):
        FunctionStore(path)

    assert digest(path) == before
    assert not Path(f"{path}-wal").exists()


def test_newer_schema_is_refused_untouched(db_path: Path) -> None:
    FunctionStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {schema_version() + 1}")
    conn.commit()
    conn.close()
    before = digest(db_path)

    with pytest.raises(StoreError, match="newer than this qt45 supports"):
        FunctionStore(db_path)

    assert digest(db_path) == before


def test_read_only_file_is_refused(db_path: Path) -> None:
    FunctionStore(db_path).close()
    db_path.chmod(0o444)

    with pytest.raises(StoreError, match="is read-only"):
        FunctionStore(db_path)


def test_read_only_check_applies_to_root_too(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FunctionStore(db_path).close()
    before = digest(db_path)
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK)

    with pytest.raises(StoreError, match="is read-only; it was left untouched"):
        FunctionStore(db_path)

    assert digest(db_path) == before


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        FunctionStore(tmp_path / "nowhere" / "lib.db")


def test_first_schema_version_is_migrated(db_path: Path) -> None:
    conn = apsw.Connection(str(db_path))
    conn.execute("BEGIN")
    MIGRATIONS[0](conn)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.execute(
        "INSERT INTO functions (name, signature, tier, description, wat, wasm, created_at) "
        "VALUES ('old', '() -> i32', 'scalar', 'from version 1', '(module)', x'00', 0)"
    )
    conn.close()

    store = FunctionStore(db_path)

    assert store.get("old", "() -> i32", Tier.SCALAR) is not None
    assert store.integrity_check() == "ok"
    store.close()
    assert sqlite3.connect(db_path).execute("PRAGMA user_version").fetchone()[0] == schema_version()


def test_empty_file_becomes_a_library(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()

    store = FunctionStore(path)

    assert store.count() == 0
    store.close()


def test_folder_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    existing = tmp_path / "existing.db"
    FunctionStore(existing).close()
    before = digest(existing)
    real_access = os.access

    def no_folder_writes(path: object, mode: int) -> bool:
        if Path(str(path)) == tmp_path and mode & os.W_OK:
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", no_folder_writes)

    with pytest.raises(StoreError, match="in a folder that is not writable"):
        FunctionStore(existing)
    with pytest.raises(StoreError, match=r"folder .* is not writable"):
        FunctionStore(tmp_path / "new.db")
    assert digest(existing) == before
    assert not (tmp_path / "new.db").exists()


def test_cached_rows_follow_other_connections(db_path: Path) -> None:
    reader = FunctionStore(db_path)
    writer = FunctionStore(db_path)
    writer.save(record(), [])
    first = reader.get("add", "(i32, i32) -> i32", Tier.SCALAR)

    replaced = record()
    replaced.description = "adds, second version"
    writer.delete("add")
    writer.save(replaced, [])
    second = reader.get("add", "(i32, i32) -> i32", Tier.SCALAR)
    writer.delete("add")
    third = reader.get("add", "(i32, i32) -> i32", Tier.SCALAR)

    assert first is not None and first.description == "adds"
    assert second is not None and second.description == "adds, second version"
    assert third is None
    reader.close()
    writer.close()
