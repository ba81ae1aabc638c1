"""Property-based tests: no input makes a traceback or changes the library."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_config
from libtools import ListModel, snapshot, store_wat
from qt45 import ArgumentError, ParseError, Qt45, Qt45Error, Signature, parse_line
from qt45.extract import MAX_REPLY_CHARS, extract_modules, strip_thinking
from qt45.signature import INT_RANGES, convert_argument
from qt45.verify import MAX_CASES, parse_scalar_tests

ADD = """(module (func (export "add") (param i32 i32) (result i32)
  local.get 0 local.get 1 i32.add))"""
ADD_REPLY = f"Here it is:\n```wat\n{ADD}\n```\nIt adds."
ADD_TESTS = '[{"inputs": [1, 2], "expected": 3}, {"inputs": [-1, 1], "expected": 0}]'
IDENTITY = {
    kind: f'(module (func (export "id_{kind}") (param {kind}) (result {kind}) local.get 0))'
    for kind in ("i32", "i64", "f32", "f64")
}

FAST = settings(max_examples=200, deadline=None)
SLOW = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

LINE_PIECES = st.sampled_from(
    [
        "add", "simd", "gpu", ".", ".info", '"', '"adds"', "\\", "(", ")", "i32", "i64",
        "f32", "f64", "x", "->", ",", ":", "[", "]", "1", "-2", "0x1f", "2.5e3", "nan",
        "inf", "-inf", "1e999", "9" * 120, " ", "\t", "#", "é", "\x00",
    ]
)  # fmt: skip
LINES = st.one_of(st.text(max_size=200), st.lists(LINE_PIECES, max_size=30).map("".join))


@FAST
@given(LINES)
def test_parse_line_raises_only_parse_error(line: str) -> None:
    try:
        parse_line(line)
    except ParseError as exc:
        assert str(exc)


def test_parse_line_rejects_huge_integer() -> None:
    with pytest.raises(ParseError, match="digits"):
        parse_line('add "adds" (i64, i64) -> i64 : ' + "9" * 5000 + ", 1")


def truncations(text: str) -> st.SearchStrategy[str]:
    return st.integers(0, len(text)).map(lambda end: text[:end])


REPLIES = st.one_of(
    st.text(max_size=400),
    truncations(ADD_REPLY),
    st.tuples(st.text(max_size=50), truncations(ADD), st.text(max_size=50)).map("".join),
    st.just("<think>" + ADD_REPLY + "</think>"),
    st.just("<think>only thinking, no answer"),
    st.lists(st.sampled_from(["(module", "(", ")", '"', ";;", "(;", ";)", "<think>", "```"]),
             max_size=60).map(" ".join),
)  # fmt: skip


@FAST
@given(REPLIES)
def test_extract_modules_returns_modules(reply: str) -> None:
    modules = extract_modules(reply)

    for module in modules:
        assert module.startswith("(")
        assert module.endswith(")")


def test_hostile_replies_stay_fast() -> None:
    for reply in ("(module " * 30_000, "<think>" * 30_000, '(module "' * 20_000):
        assert isinstance(extract_modules(reply), list)
        assert len(strip_thinking(reply)) <= MAX_REPLY_CHARS


@pytest.fixture
def library(db_path: Path) -> Iterator[Path]:
    config = make_config(db_path)
    store_wat(config, "other", "(i32, i32) -> i32", ADD.replace('"add"', '"other"'))
    yield db_path


@SLOW
@given(replies=st.lists(REPLIES, min_size=1, max_size=6))
def test_random_replies_never_crash_loop(library: Path, replies: list[str]) -> None:
    config = make_config(library, max_attempts=3)
    before = snapshot(library)
    names_before = {row[1] for row in before["functions"]}

    with Qt45(config, model=ListModel(replies)) as lib:
        try:
            result = lib.call("add", "adds two integers", "(i32, i32) -> i32", 2, 3)
        except Qt45Error as exc:
            assert str(exc)
            assert snapshot(library) == before
            return
        if result.verified:
            assert result.value == 5

    after = snapshot(library)
    assert {row[1] for row in after["functions"]} == names_before | {"add"}
    lib_store_cleanup(library)


def lib_store_cleanup(path: Path) -> None:
    """Remove the generated function so the next example starts from the same library."""
    from qt45 import FunctionStore

    store = FunctionStore(path)
    try:
        store.delete("add")
    finally:
        store.close()


TEST_REPLIES = st.one_of(
    st.text(max_size=300),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=5)
            | st.dictionaries(
                st.sampled_from(["inputs", "expected", "tests", "x"]), inner, max_size=3
            )
        ),
        max_leaves=30,
    ).map(lambda value: __import__("json").dumps(value)),
    truncations(ADD_TESTS),
)


@FAST
@given(TEST_REPLIES, st.sampled_from(["(i32, i32) -> i32", "(f64) -> f64", "() -> (i64, f32)"]))
def test_test_json_never_raises(reply: str, signature: str) -> None:
    parsed = parse_scalar_tests(reply, Signature.parse(signature))

    assert len(parsed.cases) <= MAX_CASES
    for case in parsed.cases:
        assert len(case.inputs) == len(Signature.parse(signature).params)


def test_test_json_huge_array_capped() -> None:
    reply = "[" + ",".join('{"inputs": [1, 2], "expected": 3}' for _ in range(100_000)) + "]"

    parsed = parse_scalar_tests(reply, Signature.parse("(i32, i32) -> i32"))

    assert len(parsed.cases) == MAX_CASES
    assert any("beyond the first" in note for note in parsed.dropped)


def test_test_json_deep_nesting_dropped() -> None:
    parsed = parse_scalar_tests("[" * 100_000 + "]" * 100_000, Signature.parse("() -> i32"))

    assert parsed.cases == []


@FAST
@given(st.integers(), st.sampled_from(["i32", "i64"]))
def test_integer_arguments_checked(value: int, kind: str) -> None:
    low, high = INT_RANGES[kind]
    if low <= value <= high:
        assert convert_argument(value, kind, 1) == value
    else:
        with pytest.raises(ArgumentError, match="out of range"):
            convert_argument(value, kind, 1)


@FAST
@given(st.one_of(st.floats(allow_nan=True), st.booleans()), st.sampled_from(["i32", "i64"]))
def test_floats_and_bools_rejected_for_ints(value: float | bool, kind: str) -> None:
    with pytest.raises(ArgumentError):
        convert_argument(value, kind, 1)


@FAST
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**80), 2**80)))
def test_float_arguments_converted(value: float) -> None:
    as_f64 = convert_argument(value, "f64", 1)
    assert math.isnan(as_f64) if math.isnan(float(value)) else as_f64 == float(value)

    try:
        as_f32 = convert_argument(value, "f32", 1)
    except ArgumentError as exc:
        assert "float32 maximum" in str(exc)
        assert math.isfinite(float(value))
        return
    if math.isnan(float(value)):
        assert math.isnan(as_f32)
    else:
        assert as_f32 == struct.unpack("<f", struct.pack("<f", float(value)))[0]


BOUNDARY_CASES = [
    ("i32", 2**31 - 1, 2**31 - 1),
    ("i32", -(2**31), -(2**31)),
    ("i32", 2**31, None),
    ("i32", -(2**31) - 1, None),
    ("i64", 2**63 - 1, 2**63 - 1),
    ("i64", -(2**63), -(2**63)),
    ("i64", 2**63, None),
    ("i32", 1.0, None),
    ("i32", True, None),
    ("f32", math.inf, math.inf),
    ("f32", -math.inf, -math.inf),
    ("f32", 3.4e38, struct.unpack("<f", struct.pack("<f", 3.4e38))[0]),
    ("f32", 3.5e38, None),
    ("f32", 0.1, struct.unpack("<f", struct.pack("<f", 0.1))[0]),
    ("f64", 2**63, float(2**63)),
    ("f64", -0.0, -0.0),
]


@pytest.mark.parametrize("kind, argument, expected", BOUNDARY_CASES)
def test_boundary_arguments_through_wasm(
    db_path: Path, kind: str, argument: float, expected: float | None
) -> None:
    config = make_config(db_path)
    store_wat(config, f"id_{kind}", f"({kind}) -> {kind}", IDENTITY[kind])

    with Qt45(config, model=ListModel([])) as lib:
        if expected is None:
            with pytest.raises(ArgumentError):
                lib.call(f"id_{kind}", "identity", f"({kind}) -> {kind}", argument)
            return
        value = lib.call(f"id_{kind}", "identity", f"({kind}) -> {kind}", argument).value

    assert value == expected
    assert math.copysign(1, value) == math.copysign(1, expected)


def test_nan_argument_through_wasm(db_path: Path) -> None:
    config = make_config(db_path)
    store_wat(config, "id_f64", "(f64) -> f64", IDENTITY["f64"])

    with Qt45(config, model=ListModel([])) as lib:
        value = lib.call("id_f64", "identity", "(f64) -> f64", math.nan).value

    assert math.isnan(value)
