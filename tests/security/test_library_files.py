"""Hostile library files: foreign, damaged or tampered files never run foreign native code."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import apsw
import pytest
import wasmtime

from conftest import make_config
from libtools import ListModel, file_digest, store_wat
from qt45 import CompileError, FunctionStore, Qt45, StoreError
from qt45.migrations import APPLICATION_ID, schema_version

ADD = """(module (func (export "add") (param i32 i32) (result i32)
  local.get 0 local.get 1 i32.add))"""
IMPORTS_WASI = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (func (export "add") (param i32 i32) (result i32)
    (call $exit (i32.const 1)) i32.const 0))"""


@pytest.fixture
def deserialized(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every blob given to Module.deserialize, the only path that runs stored native code."""
    seen: list[bytes] = []
    original = wasmtime.Module.deserialize

    def recording(engine: wasmtime.Engine, encoded: Any) -> wasmtime.Module:
        seen.append(bytes(encoded))
        return original(engine, encoded)

    monkeypatch.setattr(wasmtime.Module, "deserialize", staticmethod(recording))
    return seen


def open_library(db_path: Path) -> None:
    FunctionStore(db_path).close()


def assert_rejected(path: Path, *phrases: str) -> None:
    """Opening ``path`` raises StoreError with ``phrases`` and leaves its bytes and folder as they were."""
    digest = file_digest(path)
    listing = sorted(os.listdir(path.parent))

    with pytest.raises(StoreError) as caught:
        open_library(path)

    for phrase in phrases:
        assert phrase in str(caught.value)
    assert file_digest(path) == digest
    assert sorted(os.listdir(path.parent)) == listing


def test_text_file_rejected(db_path: Path) -> None:
    db_path.write_text("name,value\nadd,1\n")

    assert_rejected(db_path, "not an SQLite database", "left untouched", "--db")


def test_random_bytes_with_sqlite_header_rejected(db_path: Path) -> None:
    db_path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))

    assert_rejected(db_path, "left untouched")


def test_truncated_library_rejected(db_path: Path) -> None:
    config = make_config(db_path)
    for index in range(20):
        store_wat(config, f"add{index}", "(i32, i32) -> i32", ADD.replace('"add"', f'"add{index}"'))
    data = db_path.read_bytes()
    truncated = db_path.parent / "truncated.db"
    truncated.write_bytes(data[: len(data) // 2])

    assert_rejected(truncated, "damaged", "left untouched")


def test_other_sqlite_database_rejected(db_path: Path) -> None:
    conn = apsw.Connection(str(db_path))
    conn.execute("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')")
    conn.close()

    assert_rejected(db_path, "not a qt45 library", "left untouched")


def test_newer_schema_rejected(db_path: Path) -> None:
    open_library(db_path)
    conn = apsw.Connection(str(db_path))
    conn.execute(f"PRAGMA user_version = {schema_version() + 1}")
    conn.close()

    assert_rejected(db_path, f"schema version {schema_version() + 1}", "Upgrade qt45")


def test_read_only_library_rejected(db_path: Path) -> None:
    open_library(db_path)
    db_path.chmod(stat.S_IRUSR | stat.S_IRGRP)

    try:
        assert_rejected(db_path, "read-only", "left untouched")
    finally:
        db_path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_folder_as_library_rejected(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        open_library(tmp_path)


def test_empty_sqlite_file_becomes_library(db_path: Path) -> None:
    apsw.Connection(str(db_path)).close()

    open_library(db_path)

    conn = apsw.Connection(str(db_path))
    assert conn.execute("PRAGMA application_id").fetchall()[0][0] == APPLICATION_ID
    conn.close()


def stored_blob(db_path: Path) -> tuple[bytes, bytes]:
    conn = apsw.Connection(str(db_path))
    try:
        compiled, tag = conn.execute("SELECT compiled, compiled_tag FROM functions").fetchall()[0]
        return bytes(compiled), bytes(tag)
    finally:
        conn.close()


def set_column(db_path: Path, column: str, value: bytes | None) -> None:
    conn = apsw.Connection(str(db_path))
    conn.execute(f"UPDATE functions SET {column} = ?", (value,))
    conn.close()


def call_add(db_path: Path, key_path: Path | None = None) -> tuple[int, bool]:
    config = make_config(db_path)
    if key_path is not None:
        config = make_config(db_path, key_path=key_path)
    with Qt45(config, model=ListModel([], AssertionError("no model call expected"))) as lib:
        result = lib.call("add", "adds two integers", "(i32, i32) -> i32", 20, 22)
        loaded = next(iter(lib.runtime._loaded.values()))
        return result.value, loaded.recompiled


def test_authentic_blob_is_deserialized(db_path: Path, deserialized: list[bytes]) -> None:
    store_wat(make_config(db_path), "add", "(i32, i32) -> i32", ADD)
    blob, _ = stored_blob(db_path)

    value, recompiled = call_add(db_path)

    assert value == 42
    assert not recompiled
    assert deserialized == [blob]


def test_tampered_blob_never_deserialized(db_path: Path, deserialized: list[bytes]) -> None:
    store_wat(make_config(db_path), "add", "(i32, i32) -> i32", ADD)
    blob, tag = stored_blob(db_path)
    tampered = bytearray(blob)
    for offset in range(len(tampered) // 2, len(tampered) // 2 + 16):
        tampered[offset] ^= 0xFF
    set_column(db_path, "compiled", bytes(tampered))

    value, recompiled = call_add(db_path)

    assert value == 42
    assert recompiled
    assert bytes(tampered) not in deserialized
    new_blob, new_tag = stored_blob(db_path)
    assert new_blob != bytes(tampered)
    assert new_tag != tag or new_blob == blob


def test_tampered_tag_never_deserialized(db_path: Path, deserialized: list[bytes]) -> None:
    store_wat(make_config(db_path), "add", "(i32, i32) -> i32", ADD)
    set_column(db_path, "compiled_tag", b"\x00" * 32)

    value, recompiled = call_add(db_path)

    assert (value, recompiled) == (42, True)
    assert deserialized == []


def test_copied_library_recompiles_once(db_path: Path, deserialized: list[bytes]) -> None:
    store_wat(make_config(db_path), "add", "(i32, i32) -> i32", ADD)
    copy = db_path.parent / "copy.db"
    shutil.copy(db_path, copy)
    other_key = db_path.parent / "other-machine.key"

    first = call_add(copy, key_path=other_key)
    foreign_blob_used = len(deserialized)
    second = call_add(copy, key_path=other_key)

    assert first == (42, True)
    assert foreign_blob_used == 0
    assert second == (42, False)
    assert len(deserialized) == 1


def test_blob_from_other_engine_settings_recompiles(
    db_path: Path, deserialized: list[bytes]
) -> None:
    # A different stack limit changes the engine fingerprint, as a new wasmtime version would.
    from qt45 import Limits

    store_wat(
        make_config(db_path, limits=Limits(wasm_stack_bytes=256 * 1024)),
        "add",
        "(i32, i32) -> i32",
        ADD,
    )

    value, recompiled = call_add(db_path)

    assert (value, recompiled) == (42, True)
    assert deserialized == []


def test_swapped_wasm_fails_tag_and_checks(db_path: Path, deserialized: list[bytes]) -> None:
    config = make_config(db_path)
    store_wat(config, "add", "(i32, i32) -> i32", ADD)
    hostile = wasmtime.wat2wasm(IMPORTS_WASI)
    set_column(db_path, "wasm", bytes(hostile))

    with (
        Qt45(config, model=ListModel([], AssertionError("no model call expected"))) as lib,
        pytest.raises(CompileError, match="may import nothing"),
    ):
        lib.call("add", "adds two integers", "(i32, i32) -> i32", 1, 2)

    assert deserialized == []


def test_no_key_means_no_native_cache(db_path: Path, deserialized: list[bytes]) -> None:
    blocked = db_path.parent / "not-a-folder"
    blocked.write_text("a file where the key's folder should be")
    config = make_config(db_path, key_path=blocked / "module.key")
    store_wat(config, "add", "(i32, i32) -> i32", ADD)

    with Qt45(config, model=ListModel([])) as lib:
        assert lib.call("add", "adds two integers", "(i32, i32) -> i32", 1, 2).value == 3

    assert stored_blob_or_none(db_path) == (None, None)
    assert deserialized == []


def stored_blob_or_none(db_path: Path) -> tuple[Any, Any]:
    conn = apsw.Connection(str(db_path))
    try:
        row = conn.execute("SELECT compiled, compiled_tag FROM functions").fetchall()[0]
        return row[0], row[1]
    finally:
        conn.close()
