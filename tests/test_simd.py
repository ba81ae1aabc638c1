"""The SIMD tier: array calling convention, generation loop, verification and commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from conftest import make_config
from fakeserver import FakeLlmServer
from qt45 import (
    ArgumentError,
    CompileError,
    Limits,
    Qt45,
    Reporter,
    TrapError,
    WasmRuntime,
    bench,
    verify_arrays,
)
from qt45.arrays import run_array, to_f32_arrays
from qt45.commands import run_command
from qt45.parser import Command
from qt45.repl import execute_line
from qt45.simd import check_simd_module
from qt45.verify_arrays import parse_array_tests

VEC_ADD = """(module
  (memory (export "memory") 1)
  (func (export "vec_add_f32") (param $ptr i32) (param $len i32) (result i32)
    (local $bytes i32) (local $b i32) (local $out i32) (local $i i32) (local $vec_end i32)
    (local.set $bytes (i32.shl (local.get $len) (i32.const 2)))
    (local.set $b (i32.add (local.get $ptr) (local.get $bytes)))
    (local.set $out (i32.add (local.get $b) (local.get $bytes)))
    (local.set $vec_end (i32.and (local.get $bytes) (i32.const -16)))
    (block $vec_done
      (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $i) (local.get $vec_end)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $ptr) (local.get $i)))
                     (v128.load (i32.add (local.get $b) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $bytes)))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (f32.add (f32.load (i32.add (local.get $ptr) (local.get $i)))
                   (f32.load (i32.add (local.get $b) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail)))
    (local.get $out)))"""

# Adds whole groups of four lanes only: elements past the last full group stay 0.
VEC_ADD_NO_TAIL = """(module
  (memory (export "memory") 1)
  (func (export "vec_add_f32") (param $ptr i32) (param $len i32) (result i32)
    (local $bytes i32) (local $b i32) (local $out i32) (local $i i32)
    (local.set $bytes (i32.shl (local.get $len) (i32.const 2)))
    (local.set $b (i32.add (local.get $ptr) (local.get $bytes)))
    (local.set $out (i32.add (local.get $b) (local.get $bytes)))
    (block $done
      (loop $vec
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 16)) (local.get $bytes)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $ptr) (local.get $i)))
                     (v128.load (i32.add (local.get $b) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    (local.get $out)))"""

VEC_ADD_TESTS = json.dumps(
    [
        {"inputs": [[1, 2, 3, 4], [10, 20, 30, 40]], "expected": [11, 22, 33, 44]},
        {"inputs": [[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]], "expected": [6, 6, 6, 6, 6]},
        {"inputs": [[0.5], [0.25]], "expected": [0.75]},
    ]
)
ONLY_FOUR_TESTS = json.dumps(
    [{"inputs": [[1, 2, 3, 4], [10, 20, 30, 40]], "expected": [11, 22, 33, 44]}]
)
DESCRIPTION = "element-wise addition of two f32 arrays"


def fenced(wat: str) -> str:
    return f"```wat\n{wat}\n```"


def module_returning(offset: int) -> str:
    return f"""(module
  (memory (export "memory") 1)
  (func (export "f") (param i32 i32) (result i32) i32.const {offset}))"""


@pytest.fixture
def runtime(tmp_path: Path) -> WasmRuntime:
    return WasmRuntime(Limits(), tmp_path / "module.key")


def test_vec_add_generated_then_cached(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(VEC_ADD), VEC_ADD_TESTS)

    first = lib.call_array("simd", "vec_add_f32", DESCRIPTION, [1, 2, 3, 4], [10, 20, 30, 40])
    second = lib.call_array(
        "simd", "vec_add_f32", DESCRIPTION, [100, 200, 300, 400], [0.5, 0.5, 0.5, 0.5]
    )

    assert first.value.dtype == np.float32
    assert first.value.tolist() == [11, 22, 33, 44]
    assert first.source == "generated"
    assert first.verified
    assert first.llm_calls == 2
    assert second.value.tolist() == [100.5, 200.5, 300.5, 400.5]
    assert second.source == "cache"
    assert second.llm_calls == 0
    assert first.function.signature == "(f32[], f32[]) -> f32[]"
    assert str(first.function.tier) == "simd"


@pytest.mark.parametrize("length", [0, 1, 5, 1_000_003])
def test_vec_add_lengths(lib: Qt45, fake_server: FakeLlmServer, length: int) -> None:
    fake_server.push(fenced(VEC_ADD), VEC_ADD_TESTS)
    a = np.linspace(-1000, 1000, length, dtype=np.float32)
    b = np.arange(length, dtype=np.float32)

    result = lib.call_array("simd", "vec_add_f32", DESCRIPTION, a, b)

    assert result.value.shape == (length,)
    assert np.array_equal(result.value, a + b)


def test_generation_prompt_states_layout(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(VEC_ADD), VEC_ADD_TESTS)

    lib.call_array("simd", "vec_add_f32", DESCRIPTION, [1.0], [2.0])

    messages = fake_server.requests[0]["messages"]
    assert "v128" in messages[0]["content"]
    assert "input 2: N f32 at byte offset ptr + 4*N" in messages[1]["content"]
    assert "free space for the result: N f32 at byte offset ptr + 8*N" in messages[1]["content"]
    tests_prompt = fake_server.requests[1]["messages"][0]["content"]
    assert "not a\nmultiple of 4" in tests_prompt


def test_missing_tail_fed_back(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(VEC_ADD_NO_TAIL), VEC_ADD_TESTS, fenced(VEC_ADD))

    result = lib.call_array("simd", "vec_add_f32", DESCRIPTION, [1, 2, 3, 4, 5], [1, 1, 1, 1, 1])

    feedback = fake_server.requests[2]["messages"][-1]["content"]
    assert "length 5" in feedback
    assert "first wrong element at index 4: expected 6.0, got 0.0" in feedback
    assert result.verified
    assert result.value.tolist() == [2, 3, 4, 5, 6]
    assert any("1/3 passed" in line for line in lib.reporter.lines)


def test_import_rejected_then_fixed(lib: Qt45, fake_server: FakeLlmServer) -> None:
    importing = VEC_ADD.replace(
        "(memory", '(import "env" "log" (func $log (param i32)))\n  (memory', 1
    )
    fake_server.push(fenced(importing), fenced(VEC_ADD), VEC_ADD_TESTS)

    result = lib.call_array("simd", "vec_add_f32", DESCRIPTION, [1], [2])

    retry = fake_server.requests[1]["messages"][-1]["content"]
    assert "SIMD functions may import nothing" in retry
    assert result.value.tolist() == [3]


def test_tests_without_tail_asked_again(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(VEC_ADD), ONLY_FOUR_TESTS, VEC_ADD_TESTS)

    result = lib.call_array("simd", "vec_add_f32", DESCRIPTION, [1], [2])

    followup = fake_server.requests[2]["messages"][-1]["content"]
    assert "no case has a length that is not a multiple of 4" in followup
    assert result.verified
    assert len(lib.store.tests(result.function.id or -1)) == 3


def test_tests_without_tail_stay_unverified(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(VEC_ADD), ONLY_FOUR_TESTS, ONLY_FOUR_TESTS)

    result = lib.call_array("simd", "vec_add_f32", DESCRIPTION, [1], [2])

    assert not result.verified
    assert any(
        "1/1 passed — stored unverified: no case has a length" in line
        for line in lib.reporter.lines
    )


def test_result_offset_outside_memory(runtime: WasmRuntime) -> None:
    compiled = runtime.compile(module_returning(65_530))

    with pytest.raises(TrapError) as caught:
        run_array(runtime, compiled.module, "f", to_f32_arrays([[1, 2, 3]]))

    assert str(caught.value) == (
        "'f' returned offset 65530, but 3 f32 from there would end at byte 65542, "
        "past the end of its memory (65536 bytes)"
    )


def test_negative_offset_outside_memory(runtime: WasmRuntime) -> None:
    compiled = runtime.compile(module_returning(-4))

    with pytest.raises(TrapError, match="returned offset 4294967292"):
        run_array(runtime, compiled.module, "f", to_f32_arrays([[1.0]]))


def test_inputs_over_memory_limit(tmp_path: Path) -> None:
    runtime = WasmRuntime(Limits(memory_bytes=4 * 65_536), tmp_path / "module.key")
    compiled = runtime.compile(VEC_ADD)
    big = np.zeros(40_000, dtype=np.float32)

    with pytest.raises(TrapError, match="raise it with --memory-mb"):
        run_array(runtime, compiled.module, "vec_add_f32", [big, big])


def test_memory_maximum_reported(runtime: WasmRuntime) -> None:
    limited = VEC_ADD.replace('(memory (export "memory") 1)', '(memory (export "memory") 1 1)')
    compiled = runtime.compile(limited)
    big = np.zeros(10_000, dtype=np.float32)

    with pytest.raises(TrapError, match="declares a maximum of 1 pages"):
        run_array(runtime, compiled.module, "vec_add_f32", [big, big])


def test_endless_loop_stopped_by_fuel(tmp_path: Path) -> None:
    runtime = WasmRuntime(Limits(fuel=100_000), tmp_path / "module.key")
    spin = """(module (memory (export "memory") 1)
      (func (export "f") (param i32 i32) (result i32) (loop $l (br $l)) i32.const 0))"""
    compiled = runtime.compile(spin)

    with pytest.raises(TrapError, match="used all 100,000 fuel units"):
        run_array(runtime, compiled.module, "f", to_f32_arrays([[1.0]]))


@pytest.mark.parametrize(
    ("wat", "message"),
    [
        (
            '(module (func (export "f") (param i32 i32) (result i32) i32.const 0))',
            'export its linear memory as "memory"',
        ),
        (
            '(module (memory (export "memory") 1) (func (export "f") (param i32) (result i32) i32.const 0))',
            "has type (i32) -> i32, but the requested type is (i32, i32) -> i32",
        ),
        (
            '(module (memory (export "memory") 1) (func (export "g") (param i32 i32) (result i32) i32.const 0))',
            "must export a function named 'f'",
        ),
    ],
)
def test_simd_contract_checked(runtime: WasmRuntime, wat: str, message: str) -> None:
    compiled = runtime.compile(wat)

    with pytest.raises(CompileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_simd_module(compiled, "f")


def test_inputs_converted_to_f32() -> None:
    arrays = to_f32_arrays([[1, 2.5], np.array([3, 4], dtype=np.int64)])

    assert [array.dtype for array in arrays] == [np.float32, np.float32]
    assert arrays[1].tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "needs at least one input array"),
        ([[1, 2], [1]], r"same length, got lengths \[1, 2\]"),
        ([[[1, 2], [3, 4]]], r"flat array of numbers, got shape \(2, 2\)"),
        ([["a", "b"]], "input 1 is not an array of numbers"),
        ([[1.0, 1e39]], "input 1, element 1: 1e\\+39 exceeds the float32 maximum"),
    ],
)
def test_invalid_inputs_rejected(inputs: list[object], message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        to_f32_arrays(inputs)


def test_array_tests_parsed_leniently() -> None:
    reply = """Here are the cases:
```json
[
  {"input": [1, 2, 3], "output": [[2, 4, 6]]},
  {"inputs": [[1, 2], [3, 4]], "expected": [2, 4]},
  {"inputs": [[1, 2, 3]], "expected": [2, 4]},
  {"inputs": [["x"]], "expected": [1]},
  {"inputs": [[NaN, Infinity]], "expected": [NaN, Infinity]},
]
```"""

    parsed = parse_array_tests(reply, 1)

    assert [case.inputs for case in parsed.cases[:1]] == [[[1.0, 2.0, 3.0]]]
    assert parsed.cases[0].expected == [2.0, 4.0, 6.0]
    assert len(parsed.cases) == 2
    assert parsed.dropped == [
        "case 2: has 2 input arrays, the function takes 1",
        "case 3: expected has 2 elements, but the inputs have 3",
        "case 4: input 1 must be an array of numbers",
    ]


def test_huge_test_case_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_arrays, "MAX_CASE_ELEMENTS", 10)
    reply = json.dumps(
        [{"inputs": [[0] * 6], "expected": [0] * 6}, {"inputs": [[0] * 5], "expected": [0] * 5}]
    )

    parsed = parse_array_tests(reply, 1)

    assert len(parsed.cases) == 1
    assert parsed.dropped == ["case 1: has 12 elements; the maximum per case is 10"]


def test_repl_line_runs_simd(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(VEC_ADD), VEC_ADD_TESTS)
    console = Console(record=True, width=120)

    execute_line(lib, console, 'simd vec_add_f32 "element-wise add" [1,2,3,4] [5,6,7,8]')

    assert "Request [simd]: vec_add_f32 (element-wise add) inputs: 2" in lib.reporter.lines
    assert "  [simd] [6, 8, 10, 12]" in lib.reporter.lines


def test_bench_reports_simd(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(VEC_ADD), VEC_ADD_TESTS)
    lib.call_array("simd", "vec_add_f32", DESCRIPTION, [1], [2])
    console = Console(record=True, width=120)

    results = bench(lib, "vec_add_f32", 1_001)
    run_command(lib, console, Command("bench", ("vec_add_f32", "1001")))

    assert len(results) == 1
    assert results[0].tier == "simd"
    assert results[0].runs >= 5
    assert results[0].bytes_moved == 3 * 4 * 1_001
    output = console.export_text()
    for column in ("TIER", "ELEMENTS", "MEDIAN", "ELEMENTS/S", "GB/S"):
        assert column in output
    assert re.search(r"vec_add_f32\s+simd\s+1,001\s+\d+\s+[\d.]+ ms", output)


def test_bench_rejects_scalar(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(
        '(module (func (export "one") (result i32) i32.const 1))',
        '[{"inputs": [], "expected": 1}]',
    )
    lib.call("one", "returns 1", "() -> i32")

    with pytest.raises(ArgumentError, match="'one' is a scalar function"):
        bench(lib, "one", 10)


def test_stored_simd_reloaded(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(fenced(VEC_ADD), VEC_ADD_TESTS)
    config = make_config(db_path, fake_server.url)
    with Qt45(config, reporter=Reporter()) as first:
        first.call_array("simd", "vec_add_f32", DESCRIPTION, [1], [2])

    with Qt45(config, reporter=Reporter()) as second:
        result = second.call_array("simd", "vec_add_f32", DESCRIPTION, [1, 2, 3, 4, 5], [1] * 5)

    assert result.source == "cache"
    assert result.value.tolist() == [2, 3, 4, 5, 6]
    assert len(fake_server.requests) == 2
