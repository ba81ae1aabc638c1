"""The request path and the generation loop, through the real HTTP client."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_config
from fakeserver import FakeLlmServer, Reply
from qt45 import (
    ArgumentError,
    LlmUnavailable,
    Qt45,
    Reporter,
    ScriptedModel,
    SynthesisError,
    TrapError,
)

SUB = '(module (func (export "sub") (param i32 i32) (result i32) local.get 0 local.get 1 i32.sub))'
WRONG_SUB = (
    '(module (func (export "sub") (param i32 i32) (result i32) local.get 1 local.get 0 i32.sub))'
)
SUB_TESTS = '[{"inputs": [5, 3], "expected": 2}, {"inputs": [0, 4], "expected": -4}]'


def request_sub(lib: Qt45, *args: int) -> object:
    return lib.call("sub", "subtracts b from a", "(i32, i32) -> i32", *args)


def test_messy_reply_is_cleaned(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(
        f"<think>use {WRONG_SUB}?</think>Sure, here you go:\n```wat\n{SUB}\n```\nEnjoy!",
        f"```json\n{SUB_TESTS}\n```",
    )

    result = request_sub(lib, 9, 4)

    assert result.value == 5  # type: ignore[attr-defined]
    assert result.verified  # type: ignore[attr-defined]


def test_compile_error_goes_back_to_the_model(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(SUB.replace("i32.sub", "i32.subtract"), SUB, SUB_TESTS)

    result = request_sub(lib, 9, 4)

    retry = fake_server.requests[1]["messages"][-1]["content"]
    assert result.value == 5  # type: ignore[attr-defined]
    assert "WAT parse error" in retry
    assert '"sub"' in retry
    assert "  [llm] attempt 2/3..." in lib.reporter.lines


def test_wrong_type_counts_as_failed_attempt(lib: Qt45, fake_server: FakeLlmServer) -> None:
    wrong = SUB.replace("i32", "i64")
    fake_server.push(wrong, SUB, SUB_TESTS)

    request_sub(lib, 1, 1)

    assert (
        "has type (i64, i64) -> i64, but the requested type is (i32, i32) -> i32"
        in (fake_server.requests[1]["messages"][-1]["content"])
    )


def test_failing_test_is_fed_back(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(WRONG_SUB, SUB_TESTS, SUB)

    result = request_sub(lib, 9, 4)

    feedback = fake_server.requests[2]["messages"][-1]["content"]
    assert result.value == 5  # type: ignore[attr-defined]
    assert result.verified  # type: ignore[attr-defined]
    assert "inputs: [5, 3]" in feedback
    assert "expected: [2]" in feedback
    assert "actual: [-2]" in feedback
    assert len(fake_server.requests) == 3


def test_unfixed_failure_is_stored_unverified(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(WRONG_SUB, SUB_TESTS, WRONG_SUB, WRONG_SUB)

    result = request_sub(lib, 9, 4)
    cases = lib.store.tests(result.function.id or -1)  # type: ignore[attr-defined]

    assert result.value == -5  # type: ignore[attr-defined]
    assert not result.verified  # type: ignore[attr-defined]
    assert lib.reporter.lines[-1] == "  [wasm] -5 (unverified)"
    assert [case.passed for case in cases] == [False, False]


def test_no_valid_tests_means_unverified(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(SUB, "I think it works fine.")

    result = request_sub(lib, 2, 1)

    assert result.value == 1  # type: ignore[attr-defined]
    assert not result.verified  # type: ignore[attr-defined]
    assert "  [test] no valid test cases — stored unverified" in lib.reporter.lines


def test_failed_generation_stores_nothing(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push("no code here", "(module (func", SUB.replace("i32.sub", "i32.oops"))

    with pytest.raises(SynthesisError) as info:
        request_sub(lib, 1, 1)

    assert "3 attempt(s) failed" in str(info.value)
    assert "Nothing was stored" in str(info.value)
    assert lib.store.count() == 0


def test_max_attempts_is_configurable(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push("nothing", "nothing")
    config = make_config(db_path, fake_server.url, max_attempts=1)

    with Qt45(config, reporter=Reporter()) as lib, pytest.raises(SynthesisError):
        request_sub(lib, 1, 1)

    assert len(fake_server.requests) == 1


def test_second_request_uses_no_llm(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(SUB, SUB_TESTS)
    request_sub(lib, 9, 4)

    again = request_sub(lib, 10, 4)

    assert again.value == 6  # type: ignore[attr-defined]
    assert again.llm_calls == 0  # type: ignore[attr-defined]
    assert again.source == "cache"  # type: ignore[attr-defined]
    assert len(fake_server.requests) == 2


def test_reopened_library_uses_no_llm(db_path: Path, fake_server: FakeLlmServer) -> None:
    config = make_config(db_path, fake_server.url)
    fake_server.push(SUB, SUB_TESTS)
    with Qt45(config, reporter=Reporter()) as first:
        request_sub(first, 9, 4)

    with Qt45(config, reporter=Reporter()) as second:
        result = request_sub(second, 1, 1)
        lines = second.reporter.lines

    assert result.value == 0  # type: ignore[attr-defined]
    assert second.stats.llm_calls == 0
    assert lines[1] == "  [cache] found 'sub' (calls: 1, verified)"


def test_trap_leaves_library_usable(lib: Qt45, fake_server: FakeLlmServer) -> None:
    div = '(module (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s))'
    fake_server.push(div, '[{"inputs": [6, 3], "expected": 2}]')

    lib.call("div", "divides", "(i32, i32) -> i32", 6, 3)
    with pytest.raises(TrapError, match="'div' trapped: integer divide by zero"):
        lib.call("div", "divides", "(i32, i32) -> i32", 1, 0)

    assert lib.call("div", "divides", "(i32, i32) -> i32", 8, 2).value == 4


def test_bad_arguments_fail_before_any_llm_call(lib: Qt45, fake_server: FakeLlmServer) -> None:
    with pytest.raises(ArgumentError, match="expected 2 argument"):
        request_sub(lib, 1)

    assert fake_server.requests == []


def test_unreachable_server_stores_nothing(db_path: Path) -> None:
    config = make_config(db_path, "http://127.0.0.1:9/v1", llm_retries=0)

    with Qt45(config, reporter=Reporter()) as lib:
        with pytest.raises(LlmUnavailable, match="ollama serve"):
            request_sub(lib, 1, 1)
        assert lib.store.count() == 0


def test_scripted_model_outside_the_script(db_path: Path) -> None:
    lib = Qt45(make_config(db_path), model=ScriptedModel(), reporter=Reporter())
    with lib, pytest.raises(LlmUnavailable) as info:
        request_sub(lib, 1, 1)

    assert "cover only the demo's functions, not 'sub'" in str(info.value)
    assert "ollama serve" in str(info.value)


def test_streaming_off(db_path: Path, fake_server: FakeLlmServer) -> None:
    fake_server.push(Reply(content=SUB), SUB_TESTS)

    with Qt45(make_config(db_path, fake_server.url, stream=False), reporter=Reporter()) as lib:
        assert request_sub(lib, 3, 1).value == 2  # type: ignore[attr-defined]

    assert fake_server.requests[0]["stream"] is False


def test_same_name_other_signature_is_generated(lib: Qt45, fake_server: FakeLlmServer) -> None:
    add_i32 = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
    add_f64 = '(module (func (export "add") (param f64 f64) (result f64) local.get 0 local.get 1 f64.add))'
    fake_server.push(add_i32, '[{"inputs": [1, 2], "expected": 3}]')
    fake_server.push(add_f64, '[{"inputs": [0.5, 0.25], "expected": 0.75}]')

    ints = lib.call("add", "adds", "(i32, i32) -> i32", 1, 2)
    floats = lib.call("add", "adds", "(f64, f64) -> f64", 1.5, 2.25)

    assert ints.value == 3
    assert floats.value == 3.75
    assert len(lib.store.find_by_name("add")) == 2


def test_function_handle(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(SUB, SUB_TESTS)

    sub = lib.function("sub", "subtracts b from a", "(i32, i32) -> i32")

    assert sub(9, 4) == 5
    assert sub(-(2**31), 1) == 2**31 - 1
    with pytest.raises(ArgumentError, match="out of range"):
        sub(2**31, 1)
    with pytest.raises(ArgumentError, match="must be an integer"):
        sub(1.5, 1)
    with pytest.raises(ArgumentError, match="expected 2 argument"):
        sub(1)
    lib.store.flush()
    assert lib.store.get_by_id(sub.record.id or -1).call_count == 2  # type: ignore[union-attr]


def test_function_handle_results(lib: Qt45, fake_server: FakeLlmServer) -> None:
    pair = '(module (func (export "pair") (param f32) (result f32 f64) local.get 0 local.get 0 f64.promote_f32))'
    none = '(module (func (export "none") (param f64)))'
    fake_server.push(pair, '[{"inputs": [0.5], "expected": [0.5, 0.5]}]')
    fake_server.push(none, '[{"inputs": [1.0], "expected": []}]')

    pair_function = lib.function("pair", "returns x twice", "(f32) -> (f32, f64)")
    none_function = lib.function("none", "does nothing", "(f64)")

    assert pair_function(0.1) == (0.10000000149011612, 0.10000000149011612)
    assert pair_function(2) == (2.0, 2.0)
    assert none_function(1.0) is None


def test_function_handle_traps_and_recovers(lib: Qt45, fake_server: FakeLlmServer) -> None:
    div = '(module (func (export "div") (param i64 i64) (result i64) local.get 0 local.get 1 i64.div_s))'
    fake_server.push(div, '[{"inputs": [6, 3], "expected": 2}]')
    handle = lib.function("div", "divides", "(i64, i64) -> i64")

    with pytest.raises(TrapError, match="'div' trapped: integer divide by zero"):
        handle(1, 0)
    with pytest.raises(TrapError, match="integer overflow"):
        handle(-(2**63), -1)

    assert handle(2**62, 2) == 2**61
    assert handle(9, 3) == 3


def test_function_handle_uses_the_fast_path(lib: Qt45, fake_server: FakeLlmServer) -> None:
    fake_server.push(SUB, SUB_TESTS)
    sub = lib.function("sub", "subtracts b from a", "(i32, i32) -> i32")

    sub(1, 1)

    assert sub._fast is not None
    assert sub._fast.__name__ == "fast_call"


def test_function_handle_stops_at_the_time_limit(db_path: Path, fake_server: FakeLlmServer) -> None:
    from qt45 import Limits

    spin = '(module (func (export "spin") (param i32) (result i32) (loop br 0) local.get 0))'
    fake_server.push(spin, "no tests")
    limits = Limits(fuel=10**15, call_timeout_s=0.2)
    with Qt45(make_config(db_path, fake_server.url, limits=limits), reporter=Reporter()) as lib:
        handle = lib.function("spin", "spins", "(i32) -> i32")

        with pytest.raises(TrapError, match="the wall-clock limit"):
            handle(1)
        with pytest.raises(TrapError, match="the wall-clock limit"):
            handle(2)
