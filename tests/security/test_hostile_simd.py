"""Hostile SIMD-tier modules: each call stops with a clear message, the host goes on, and the
library is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_config
from fakeserver import FakeLlmServer
from libtools import ListModel, snapshot, store_array
from qt45 import (
    CompileError,
    Config,
    Limits,
    Qt45,
    Reporter,
    SynthesisError,
    Tier,
    TrapError,
)
from test_simd import VEC_ADD, VEC_ADD_TESTS, fenced

MEMORY_CAP_MIB = 16


def array_module(name: str, body: str, prelude: str = '(memory (export "memory") 1)') -> str:
    """A SIMD-tier module exporting ``name``, which runs ``body`` with the offset on the stack."""
    return f"""(module
  {prelude}
  (func (export "{name}") (param $ptr i32) (param $len i32) (result i32)
    {body}))"""


SPIN = array_module("spin", "(loop $again (br $again)) (local.get $ptr)")

SPIN_AT_START = array_module(
    "spin_start",
    "(local.get $ptr)",
    '(memory (export "memory") 1)\n  (func $start (loop $again (br $again)))\n  (start $start)',
)

# Grows memory one page at a time until memory.grow returns -1, then stores the
# final size in pages as the first result element.
GROW_ALL = array_module(
    "grow_all",
    """(block $denied
      (loop $again
        (br_if $denied (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $again)))
    (f32.store (local.get $ptr) (f32.convert_i32_u (memory.size)))
    (local.get $ptr)""",
)

# Stores the result of memory.grow for 65,535 more pages.
GROW_HUGE = array_module(
    "grow_huge",
    """(f32.store (local.get $ptr) (f32.convert_i32_s (memory.grow (i32.const 65535))))
    (local.get $ptr)""",
)

HUGE_MEMORY = array_module("huge_memory", "(local.get $ptr)", '(memory (export "memory") 5000)')

HUGE_DATA = array_module(
    "huge_data",
    "(local.get $ptr)",
    '(memory (export "memory") 1)\n  (data (i32.const 65500) "' + "x" * 100 + '")',
)

RECURSE = """(module
  (memory (export "memory") 1)
  (func $down (param i32) (result i32)
    (call $down (i32.add (local.get 0) (i32.const 1))))
  (func (export "recurse") (param $ptr i32) (param $len i32) (result i32)
    (call $down (local.get $ptr))))"""

WASI_IMPORT = (
    '(import "wasi_snapshot_preview1" "fd_write" '
    "(func $fd_write (param i32 i32 i32 i32) (result i32)))"
)


def with_import(wat: str, extra_import: str) -> str:
    """Add ``extra_import`` before the memory of a module (imports come first)."""
    return wat.replace("(memory", f"{extra_import}\n  (memory", 1)


@pytest.fixture
def config(db_path: Path) -> Config:
    limits = Limits(
        fuel=20_000_000,
        call_timeout_s=0.5,
        memory_bytes=MEMORY_CAP_MIB * 2**20,
    )
    config = make_config(db_path, limits=limits)
    store_array(config, "vec_add_f32", Tier.SIMD, VEC_ADD, input_count=2)
    return config


@pytest.fixture
def lib(config: Config) -> Iterator[Qt45]:
    model = ListModel([], when_empty=AssertionError("no model call expected"))
    with Qt45(config, model=model) as instance:
        yield instance


def assert_host_survives(lib: Qt45) -> None:
    result = lib.call_array("simd", "vec_add_f32", "adds", [1, 2, 3, 4, 5], [10] * 5)

    assert result.value.tolist() == [11, 12, 13, 14, 15]


def call_hostile(lib: Qt45, config: Config, name: str, wat: str) -> TrapError:
    """Store ``wat`` as ``name``, call it, and check the library and the host are intact."""
    store_array(config, name, Tier.SIMD, wat)
    before = snapshot(config.db_path)

    with pytest.raises(TrapError) as caught:
        lib.call_array("simd", name, f"test function {name}", [1.0, 2.0])

    assert snapshot(config.db_path) == before
    assert_host_survives(lib)
    assert caught.value.function == name
    return caught.value


def test_infinite_loop_stops_on_deadline(db_path: Path) -> None:
    # The array tiers run without fuel metering, so only the deadline bounds them.
    config = make_config(db_path, limits=Limits(fuel=10**15, call_timeout_s=0.3))
    store_array(config, "vec_add_f32", Tier.SIMD, VEC_ADD, input_count=2)
    with Qt45(config, model=ListModel([])) as lib:
        error = call_hostile(lib, config, "spin", SPIN)

    assert error.cause == "time limit exceeded"
    assert "'spin' stopped: it ran longer than 0.3 s" in str(error)
    assert "--call-timeout or QT45_CALL_TIMEOUT" in str(error)


def test_start_function_loop_stops_on_deadline(db_path: Path) -> None:
    config = make_config(db_path, limits=Limits(fuel=10**15, call_timeout_s=0.3))
    store_array(config, "vec_add_f32", Tier.SIMD, VEC_ADD, input_count=2)
    with Qt45(config, model=ListModel([])) as lib:
        error = call_hostile(lib, config, "spin_start", SPIN_AT_START)

    assert error.cause == "time limit exceeded"


def test_memory_grow_bomb_gets_minus_one(lib: Qt45, config: Config) -> None:
    store_array(config, "grow_all", Tier.SIMD, GROW_ALL)
    store_array(config, "grow_huge", Tier.SIMD, GROW_HUGE)

    pages = lib.call_array("simd", "grow_all", "grows", [0.0]).value
    denied = lib.call_array("simd", "grow_huge", "grows", [0.0]).value

    assert pages.tolist() == [MEMORY_CAP_MIB * 2**20 // 65536]
    assert denied.tolist() == [-1]
    assert_host_survives(lib)


def test_huge_initial_memory_rejected(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "huge_memory", HUGE_MEMORY)

    assert error.cause == "linear-memory limit exceeded"
    assert "'huge_memory' failed to start: it needs 312.5 MiB of linear memory" in str(error)
    assert "--memory-mb or QT45_MEMORY_MB" in str(error)


def test_data_segment_past_memory_end(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "huge_data", HUGE_DATA)

    assert error.cause == "out-of-bounds memory access"


def test_deep_recursion_stops_on_stack(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "recurse", RECURSE)

    assert error.cause == "call stack exhausted"
    assert "--stack-kb or QT45_STACK_KB" in str(error)


def test_wasi_import_fed_back_to_model(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(with_import(VEC_ADD, WASI_IMPORT)), fenced(VEC_ADD), VEC_ADD_TESTS)
    config = make_config(db_path, fake_server.url)

    with Qt45(config, reporter=Reporter()) as lib:
        result = lib.call_array("simd", "vec_add_f32", "adds", [1, 2], [3, 4])

    retry = fake_server.requests[1]["messages"][-1]["content"]
    assert (
        "the module imports wasi_snapshot_preview1.fd_write, but SIMD functions may import "
        "nothing" in retry
    )
    assert result.value.tolist() == [4, 6]
    stored = snapshot(db_path)["functions"]
    assert len(stored) == 1
    assert not any("wasi" in str(column) for column in stored[0])


def test_wasi_import_in_library_rejected(lib: Qt45, config: Config) -> None:
    store_array(config, "simd_wasi", Tier.SIMD, with_import(VEC_ADD, WASI_IMPORT), 2)
    before = snapshot(config.db_path)

    with pytest.raises(CompileError) as caught:
        lib.call_array("simd", "simd_wasi", "adds", [1.0], [2.0])
    after = snapshot(config.db_path)

    assert "SIMD functions may import nothing" in str(caught.value)
    assert after == before
    assert_host_survives(lib)


def test_importing_attempts_store_nothing(db_path: Path, fake_server: FakeLlmServer) -> None:
    imports = [
        WASI_IMPORT,
        '(import "env" "abort" (func $abort (param i32)))',
        '(import "env" "table" (table 1 funcref))',
    ]
    fake_server.push(*(fenced(with_import(VEC_ADD, extra)) for extra in imports))
    config = make_config(db_path, fake_server.url)

    with Qt45(config, reporter=Reporter()) as lib, pytest.raises(SynthesisError) as caught:
        lib.call_array("simd", "vec_add_f32", "adds", [1, 2], [3, 4])

    assert "3 attempt(s) failed" in str(caught.value)
    assert "Nothing was stored" in str(caught.value)
    assert snapshot(db_path) == {"functions": [], "test_cases": [], "aliases": []}
