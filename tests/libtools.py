"""Helpers for tests that check a library file before and after hostile input."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import apsw

from qt45 import Config, FunctionRecord, FunctionStore, Tier, WasmRuntime
from qt45.llm import ChatTask, Message
from qt45.request import array_signature


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, to prove a rejected file was not modified."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the library's tables, read without writing to the file."""
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in ("functions", "test_cases", "aliases")
        }
    finally:
        conn.close()


def store_wat(config: Config, name: str, signature: str, wat: str, verified: bool = True) -> int:
    """Compile ``wat`` and store it as a scalar function with authenticated native code."""
    runtime = WasmRuntime(config.limits, config.key_path)
    return _store_compiled(config, runtime, name, signature, Tier.SCALAR, wat, verified)


def store_array(config: Config, name: str, tier: Tier, wat: str, input_count: int = 1) -> int:
    """Compile ``wat`` and store it as a SIMD or GPU function with authenticated native code.

    The module is stored as it is, without the tier's checks, the way a
    shared library file could carry it.
    """
    # Array functions run on the engine without fuel metering, as Qt45.arrays does.
    runtime = WasmRuntime(config.limits, config.key_path, consume_fuel=False)
    signature = array_signature(input_count)
    return _store_compiled(config, runtime, name, signature, tier, wat, True)


def _store_compiled(
    config: Config,
    runtime: WasmRuntime,
    name: str,
    signature: str,
    tier: Tier,
    wat: str,
    verified: bool,
) -> int:
    compiled = runtime.compile(wat)
    native, tag = runtime.serialize(compiled)
    store = FunctionStore(config.db_path)
    try:
        record = FunctionRecord(
            name=name,
            signature=signature,
            tier=tier,
            description=f"test function {name}",
            wat=wat,
            wasm=compiled.wasm,
            compiled=native,
            compiled_tag=tag,
            verified=verified,
        )
        return store.save(record, [])
    finally:
        store.close()


class ListModel:
    """A ChatModel that returns the given replies in order, then raises the given error."""

    label = "list of replies"

    def __init__(self, replies: Iterable[str], when_empty: Exception | None = None) -> None:
        self.replies = list(replies)
        self.calls = 0
        self.tasks: list[ChatTask] = []
        self.when_empty = when_empty

    def chat(self, messages: list[Message], task: ChatTask) -> str:
        self.calls += 1
        self.tasks.append(task)
        if not self.replies:
            if self.when_empty is not None:
                raise self.when_empty
            return ""
        return self.replies.pop(0)
