"""WasmRuntime: compiling, contract checks, calls, traps and limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from qt45 import CompileError, Limits, Signature, TrapError, WasmRuntime
from qt45.runtime import LoadedFunction
from qt45.signature import Tier
from qt45.store import FunctionRecord

TRAPS = """
(module
  (memory 1)
  (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func (export "spin") (result i32) (loop br 0) i32.const 0)
  (func $deep (export "deep") (param i32) (result i32) local.get 0 call $deep)
  (func (export "oob") (param i32) (result i32) local.get 0 i32.load)
  (func (export "halt") (result i32) unreachable)
  (func (export "overflow") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func (export "trunc") (param f64) (result i32) local.get 0 i32.trunc_f64_s)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))
"""


@pytest.fixture
def runtime(tmp_path: Path) -> WasmRuntime:
    return WasmRuntime(Limits(fuel=2_000_000, memory_bytes=4 * 65536), tmp_path / "key")


def load(runtime: WasmRuntime, wat: str, name: str, signature: str) -> LoadedFunction:
    compiled = runtime.compile(wat)
    sig = Signature.parse(signature)
    runtime.check_scalar(compiled, name, sig)
    return LoadedFunction(name, sig, compiled.module)


@pytest.mark.parametrize(
    ("signature", "body", "args", "expected"),
    [
        ("() -> i32", "i32.const 42", (), [42]),
        ("(i64, i64) -> i64", "local.get 0 local.get 1 i64.mul", (2**40, 3), [3 * 2**40]),
        ("(f32) -> f32", "local.get 0 f32.sqrt", (2.25,), [1.5]),
        ("(f64, i32) -> f64", "local.get 0 local.get 1 f64.convert_i32_s f64.add", (0.5, 2), [2.5]),
        ("(i32) -> (i32, i32)", "local.get 0 local.get 0 i32.const 1 i32.add", (7,), [7, 8]),
        ("(i32)", "nop", (7,), []),
    ],
)
def test_scalar_calls_of_any_signature(
    runtime: WasmRuntime, signature: str, body: str, args: tuple[float, ...], expected: list[float]
) -> None:
    sig = Signature.parse(signature)
    from qt45.scalar import wat_type

    wat = f'(module (func (export "f") {wat_type(sig)} {body}))'
    loaded = load(runtime, wat, "f", signature)

    assert runtime.call_scalar(loaded, args) == expected


@pytest.mark.parametrize(
    ("name", "signature", "args", "cause"),
    [
        ("div", "(i32, i32) -> i32", (1, 0), "integer divide by zero"),
        ("overflow", "(i32, i32) -> i32", (-(2**31), -1), "integer overflow"),
        ("oob", "(i32) -> i32", (1_000_000,), "out-of-bounds memory access"),
        ("halt", "() -> i32", (), "unreachable instruction executed"),
        ("trunc", "(f64) -> i32", (float("nan"),), "invalid conversion to integer"),
    ],
)
def test_trap_kinds(
    runtime: WasmRuntime, name: str, signature: str, args: tuple[float, ...], cause: str
) -> None:
    loaded = load(runtime, TRAPS, name, signature)

    with pytest.raises(TrapError) as info:
        runtime.call_scalar(loaded, args)

    assert str(info.value) == f"{name!r} trapped: {cause}"
    assert info.value.function == name


def test_fuel_limit(runtime: WasmRuntime) -> None:
    loaded = load(runtime, TRAPS, "spin", "() -> i32")

    with pytest.raises(TrapError) as info:
        runtime.call_scalar(loaded, ())

    assert "used all 2,000,000 fuel units (the CPU limit)" in str(info.value)
    assert "--fuel" in str(info.value)


def test_stack_limit(runtime: WasmRuntime) -> None:
    loaded = load(runtime, TRAPS, "deep", "(i32) -> i32")

    with pytest.raises(TrapError) as info:
        runtime.call_scalar(loaded, (1,))

    assert "call stack exhausted" in str(info.value)
    assert "--stack-kb" in str(info.value)


def test_memory_cap_makes_grow_fail(runtime: WasmRuntime) -> None:
    loaded = load(runtime, TRAPS, "grow", "(i32) -> i32")

    assert runtime.call_scalar(loaded, (2,)) == [1]
    assert runtime.call_scalar(loaded, (10,)) == [-1]


def test_function_works_after_a_trap(runtime: WasmRuntime) -> None:
    loaded = load(runtime, TRAPS, "div", "(i32, i32) -> i32")

    with pytest.raises(TrapError):
        runtime.call_scalar(loaded, (1, 0))

    assert runtime.call_scalar(loaded, (9, 3)) == [3]


def test_import_is_rejected(runtime: WasmRuntime) -> None:
    wat = '(module (import "env" "f" (func)) (func (export "g") (result i32) i32.const 1))'
    compiled = runtime.compile(wat)

    with pytest.raises(CompileError) as info:
        runtime.check_scalar(compiled, "g", Signature.parse("() -> i32"))

    assert "imports env.f" in str(info.value)


@pytest.mark.parametrize(
    ("wat", "fragment"),
    [
        ('(module (func (export "other") (result i32) i32.const 1))', "exports 'other'"),
        ('(module (func (export "f") (result i64) i64.const 1))', "has type () -> i64"),
        ('(module (global (export "f") i32 (i32.const 1)))', "is not a function"),
    ],
)
def test_export_contract(runtime: WasmRuntime, wat: str, fragment: str) -> None:
    compiled = runtime.compile(wat)

    with pytest.raises(CompileError) as info:
        runtime.check_scalar(compiled, "f", Signature.parse("() -> i32"))

    assert fragment in str(info.value)


def test_compile_errors(runtime: WasmRuntime) -> None:
    with pytest.raises(CompileError, match="WAT parse error"):
        runtime.compile('(module (func (export "f") i32.bogus))')
    with pytest.raises(CompileError, match="type mismatch"):
        runtime.compile('(module (func (export "f") (result i32) i64.const 1))')


def make_record(runtime: WasmRuntime, wat: str) -> FunctionRecord:
    compiled = runtime.compile(wat)
    native, tag = runtime.serialize(compiled)
    return FunctionRecord(
        name="f",
        signature="() -> i32",
        tier=Tier.SCALAR,
        description="one",
        wat=wat,
        wasm=compiled.wasm,
        compiled=native,
        compiled_tag=tag,
        id=1,
    )


def test_stored_native_code_loads_without_recompiling(runtime: WasmRuntime) -> None:
    record = make_record(runtime, '(module (func (export "f") (result i32) i32.const 1))')

    module, recompiled = runtime.load_module(record)

    assert not recompiled
    assert [item.name for item in module.exports] == ["f"]


def test_tampered_native_code_is_recompiled(runtime: WasmRuntime) -> None:
    record = make_record(runtime, '(module (func (export "f") (result i32) i32.const 1))')
    assert record.compiled is not None
    record.compiled = record.compiled[:-1] + bytes([record.compiled[-1] ^ 1])

    loaded = runtime.load(record)

    assert loaded.recompiled
    assert runtime.call_scalar(loaded, ()) == [1]


def test_native_code_from_another_key_is_recompiled(runtime: WasmRuntime, tmp_path: Path) -> None:
    other = WasmRuntime(Limits(), tmp_path / "other-key")
    record = make_record(other, '(module (func (export "f") (result i32) i32.const 5))')

    loaded = runtime.load(record)

    assert loaded.recompiled
    assert runtime.call_scalar(loaded, ()) == [5]


def test_fallback_without_fast_path(runtime: WasmRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    import qt45.runtime

    monkeypatch.setattr(qt45.runtime, "FAST_PATH_AVAILABLE", False)
    loaded = load(runtime, TRAPS, "div", "(i32, i32) -> i32")

    assert runtime.call_scalar(loaded, (9, 3)) == [3]
    assert loaded.raw is None
    with pytest.raises(TrapError, match="integer divide by zero"):
        runtime.call_scalar(loaded, (1, 0))
