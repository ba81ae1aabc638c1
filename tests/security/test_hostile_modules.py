"""Hostile modules in the library: each call stops with a clear message and the host goes on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_config
from libtools import ListModel, snapshot, store_wat
from qt45 import Config, Limits, Qt45, TrapError

ADD = """(module (func (export "add") (param i32 i32) (result i32)
  local.get 0 local.get 1 i32.add))"""

SPIN = """(module (func (export "spin") (result i32)
  (loop $again (br $again))
  i32.const 0))"""

FILL_FOREVER = """(module (memory 256)
  (func (export "fill") (result i32)
    (loop $again
      (memory.fill (i32.const 0) (i32.const 7) (i32.const 16777216))
      (br $again))
    i32.const 0))"""

GROW_ALL = """(module (memory 1)
  (func (export "grow_all") (result i32)
    (block $denied
      (loop $again
        (br_if $denied (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $again)))
    memory.size))"""

GROW_HUGE = """(module (memory 1)
  (func (export "grow_huge") (result i32)
    (memory.grow (i32.const 65535))))"""

HUGE_MEMORY = """(module (memory 5000)
  (func (export "huge_memory") (result i32) i32.const 1))"""

DATA_OUT_OF_BOUNDS = """(module (memory 1)
  (data (i32.const 65530) "0123456789abcdef")
  (func (export "data_oob") (result i32) i32.const 1))"""

HUGE_TABLE = """(module (table 20000 funcref)
  (func (export "huge_table") (result i32) i32.const 1))"""

RECURSE = """(module
  (func $recurse (export "recurse") (param i32) (result i32)
    local.get 0 i32.const 1 i32.add call $recurse))"""

SPIN_AT_START = """(module
  (func $start (loop $again (br $again)))
  (start $start)
  (func (export "spin_start") (result i32) i32.const 0))"""

MEMORY_CAP_MIB = 16


@pytest.fixture
def config(db_path: Path) -> Config:
    limits = Limits(
        fuel=20_000_000,
        call_timeout_s=0.5,
        memory_bytes=MEMORY_CAP_MIB * 2**20,
        table_elements=1000,
    )
    config = make_config(db_path, limits=limits)
    store_wat(config, "add", "(i32, i32) -> i32", ADD)
    return config


@pytest.fixture
def lib(config: Config) -> Iterator[Qt45]:
    model = ListModel([], when_empty=AssertionError("no model call expected"))
    with Qt45(config, model=model) as instance:
        yield instance


def call_hostile(lib: Qt45, config: Config, name: str, wat: str, *args: int) -> TrapError:
    """Store ``wat`` as ``name``, call it, and check the trap left the library and host intact."""
    signature = "(i32) -> i32" if args else "() -> i32"
    store_wat(config, name, signature, wat)
    before = snapshot(config.db_path)

    with pytest.raises(TrapError) as caught:
        lib.call(name, f"test function {name}", signature, *args)

    assert snapshot(config.db_path) == before
    assert lib.call("add", "test function add", "(i32, i32) -> i32", 2, 3).value == 5
    assert caught.value.function == name
    return caught.value


def test_infinite_loop_stops_on_fuel(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "spin", SPIN)

    assert error.cause == "CPU limit exceeded"
    assert "20,000,000 fuel units" in str(error)
    assert "--fuel or QT45_FUEL" in str(error)


def test_infinite_loop_stops_on_deadline(db_path: Path) -> None:
    limits = Limits(fuel=10**15, call_timeout_s=0.3)
    config = make_config(db_path, limits=limits)
    store_wat(config, "add", "(i32, i32) -> i32", ADD)
    with Qt45(config, model=ListModel([])) as lib:
        error = call_hostile(lib, config, "spin", SPIN)

    assert error.cause == "time limit exceeded"
    assert "longer than 0.3 s" in str(error)
    assert "--call-timeout or QT45_CALL_TIMEOUT" in str(error)


def test_bulk_fill_loop_stops(lib: Qt45, config: Config) -> None:
    # wasmtime 51 charges fuel for the bytes memory.fill writes, so fuel or the
    # deadline, whichever comes first, ends this loop.
    error = call_hostile(lib, config, "fill", FILL_FOREVER)

    assert error.cause in ("CPU limit exceeded", "time limit exceeded")


def test_memory_grow_bomb_gets_minus_one(lib: Qt45, config: Config) -> None:
    store_wat(config, "grow_all", "() -> i32", GROW_ALL)
    store_wat(config, "grow_huge", "() -> i32", GROW_HUGE)

    pages = lib.call("grow_all", "test function grow_all", "() -> i32").value
    denied = lib.call("grow_huge", "test function grow_huge", "() -> i32").value

    assert pages == MEMORY_CAP_MIB * 2**20 // 65536
    assert denied == -1


def test_huge_initial_memory_rejected(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "huge_memory", HUGE_MEMORY)

    assert error.cause == "linear-memory limit exceeded"
    assert "312.5 MiB" in str(error)
    assert f"limit of {MEMORY_CAP_MIB} MiB" in str(error)
    assert "--memory-mb or QT45_MEMORY_MB" in str(error)


def test_data_segment_out_of_bounds(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "data_oob", DATA_OUT_OF_BOUNDS)

    assert error.cause == "out-of-bounds memory access"


def test_huge_table_rejected(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "huge_table", HUGE_TABLE)

    assert error.cause == "table limit exceeded"
    assert "1,000 table elements" in str(error)
    assert "--table-elements or QT45_TABLE_ELEMENTS" in str(error)


def test_deep_recursion_stops_on_stack(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "recurse", RECURSE, 0)

    assert error.cause == "call stack exhausted"
    assert "512 KiB" in str(error)
    assert "--stack-kb or QT45_STACK_KB" in str(error)


def test_start_function_loop_stops(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "spin_start", SPIN_AT_START)

    assert error.cause == "CPU limit exceeded"
    assert "'spin_start' stopped" in str(error)


def test_limit_hit_twice_in_a_row(lib: Qt45, config: Config) -> None:
    call_hostile(lib, config, "spin", SPIN)

    with pytest.raises(TrapError) as second:
        lib.call("spin", "test function spin", "() -> i32")

    assert second.value.cause == "CPU limit exceeded"
