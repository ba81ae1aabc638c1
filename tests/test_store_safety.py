"""No lost functions: concurrent writers, a killed writer and failed generations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_config
from libtools import ListModel, snapshot, store_wat
from qt45 import FunctionStore, LlmUnavailable, Qt45, SynthesisError

WORKER = Path(__file__).with_name("store_worker.py")
ADD = """(module (func (export "add") (param i32 i32) (result i32)
  local.get 0 local.get 1 i32.add))"""
ADD_REPLY = f"```wat\n{ADD}\n```"
ADD_TESTS = '[{"inputs": [1, 2], "expected": 3}, {"inputs": [5, 5], "expected": 10}]'


def worker(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_processes_lose_no_writes(db_path: Path) -> None:
    config = make_config(db_path)
    store_wat(config, "add", "(i32, i32) -> i32", ADD)
    count = 40
    key = str(config.key_path)

    processes = [worker("hammer", str(db_path), key, prefix, str(count)) for prefix in "ab"]
    outputs = [process.communicate(timeout=120) for process in processes]

    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    store = FunctionStore(db_path)
    try:
        names = {record.name for record in store.list_functions()}
        for prefix in "ab":
            for index in range(count):
                assert f"{prefix}_{index}" in names
                assert store.resolve_alias(f"alias_{prefix}_{index}", "() -> i32", "scalar")
        add = store.get("add", "(i32, i32) -> i32", "scalar")
        assert add is not None
        assert add.call_count == 2 * count
        assert store.integrity_check() == "ok"
    finally:
        store.close()


def test_kill_during_store_leaves_sound_library(db_path: Path) -> None:
    FunctionStore(db_path).close()
    process = worker("endless", str(db_path), "-", "big", "0")
    saved: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        saved.append(line.split()[1])
        if len(saved) == 5:
            break
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)

    store = FunctionStore(db_path)
    try:
        assert store.integrity_check() == "ok"
        names = {record.name for record in store.list_functions()}
        assert set(saved) <= names
    finally:
        store.close()


def test_same_function_stored_twice_keeps_id(db_path: Path) -> None:
    config = make_config(db_path)
    first_id = store_wat(config, "add", "(i32, i32) -> i32", ADD)
    store = FunctionStore(db_path)
    store.add_alias("plus", "(i32, i32) -> i32", "scalar", first_id)
    store.close()

    second_id = store_wat(config, "add", "(i32, i32) -> i32", ADD.replace("i32.add", "i32.add"))

    store = FunctionStore(db_path)
    try:
        assert second_id == first_id
        alias = store.resolve_alias("plus", "(i32, i32) -> i32", "scalar")
        assert alias is not None and alias.id == first_id
    finally:
        store.close()


def test_unverified_never_replaces_verified(db_path: Path) -> None:
    config = make_config(db_path)
    store_wat(config, "add", "(i32, i32) -> i32", ADD, verified=True)
    wrong = ADD.replace("i32.add", "i32.sub")

    store_wat(config, "add", "(i32, i32) -> i32", wrong, verified=False)

    store = FunctionStore(db_path)
    try:
        record = store.get("add", "(i32, i32) -> i32", "scalar")
        assert record is not None
        assert record.verified
        assert "i32.add" in record.wat
    finally:
        store.close()


@pytest.mark.parametrize(
    "replies, error",
    [
        (["no code here", "(module (func", '```wat\n(module (func (export "x")))\n```'], None),
        (["no code here"], LlmUnavailable("the server went away")),
        ([ADD_REPLY], LlmUnavailable("the server went away during tests")),
    ],
    ids=["nothing-compiles", "server-gone-mid-loop", "server-gone-at-tests"],
)
def test_failed_generation_stores_nothing(
    db_path: Path, replies: list[str], error: Exception | None
) -> None:
    config = make_config(db_path, max_attempts=3)
    store_wat(config, "other", "(i32, i32) -> i32", ADD.replace('"add"', '"other"'))
    before = snapshot(db_path)

    with (
        Qt45(config, model=ListModel(replies, error)) as lib,
        pytest.raises((SynthesisError, LlmUnavailable)) as caught,
    ):
        lib.call("add", "adds two integers", "(i32, i32) -> i32", 1, 2)

    assert "add" in str(caught.value) or "server" in str(caught.value)
    assert snapshot(db_path) == before


def test_generated_function_stored_whole(db_path: Path) -> None:
    config = make_config(db_path)

    with Qt45(config, model=ListModel([ADD_REPLY, ADD_TESTS])) as lib:
        assert lib.call("add", "adds two integers", "(i32, i32) -> i32", 1, 2).value == 3

    rows = snapshot(db_path)
    assert len(rows["functions"]) == 1
    assert len(rows["test_cases"]) == 2
