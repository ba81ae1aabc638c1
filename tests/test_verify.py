"""Lenient parsing of model-written test cases and result comparison."""

from __future__ import annotations

import math

from qt45 import Signature
from qt45.verify import parse_json_lenient, parse_scalar_tests, values_match

I32_PAIR = Signature(("i32", "i32"), ("i32",))


def test_fenced_json_with_trailing_commas() -> None:
    reply = '```json\n[\n {"inputs": [1, 2], "expected": 3},\n]\n```'

    parsed = parse_scalar_tests(reply, I32_PAIR)

    assert [case.inputs for case in parsed.cases] == [[1, 2]]
    assert [case.expected for case in parsed.cases] == [[3]]
    assert parsed.dropped == []


def test_nan_and_infinity_literals() -> None:
    value = parse_json_lenient('[{"inputs": [nan, -inf, Infinity], "expected": NaN}]')

    assert math.isnan(value[0]["inputs"][0])
    assert value[0]["inputs"][1] == -math.inf
    assert value[0]["inputs"][2] == math.inf


def test_alternative_keys_and_wrapping_object() -> None:
    reply = (
        'Here you go: {"tests": [{"input": [5, 5], "output": 25}, {"args": [2, 3], "result": 6}]}'
    )

    parsed = parse_scalar_tests(reply, I32_PAIR)

    assert [case.inputs for case in parsed.cases] == [[5, 5], [2, 3]]


def test_malformed_cases_are_dropped_with_a_note() -> None:
    reply = (
        '[{"inputs": [1, 2], "expected": 3}, {"inputs": [1], "expected": 1},'
        ' {"inputs": [1.5, 2], "expected": 3}, {"inputs": [1, 2]}, "junk"]'
    )

    parsed = parse_scalar_tests(reply, I32_PAIR)

    assert len(parsed.cases) == 1
    assert len(parsed.dropped) == 4
    assert "has 1 inputs, the signature takes 2" in parsed.dropped[0]


def test_reply_without_json() -> None:
    parsed = parse_scalar_tests("I would test it with some numbers.", I32_PAIR)

    assert parsed.cases == []
    assert parsed.dropped == ["no JSON array or object found in the reply"]


def test_cases_are_capped() -> None:
    reply = "[" + ",".join('{"inputs": [1, 1], "expected": 2}' for _ in range(50)) + "]"

    parsed = parse_scalar_tests(reply, I32_PAIR)

    assert len(parsed.cases) == 20
    assert "beyond the first 20" in parsed.dropped[-1]


def test_zero_result_signature() -> None:
    parsed = parse_scalar_tests('[{"inputs": [1], "expected": []}]', Signature(("i32",), ()))

    assert [case.expected for case in parsed.cases] == [[]]


def test_values_match() -> None:
    assert values_match(3, 3, "i32")
    assert values_match(4294967295, -1, "i32")
    assert not values_match(3, 4, "i64")
    assert values_match(78.5398, 78.53981633974483, "f64")
    assert not values_match(78.6, 78.53981633974483, "f64")
    assert values_match(math.nan, math.nan, "f32")
    assert not values_match(math.nan, 1.0, "f32")
    assert values_match(math.inf, math.inf, "f64")
    assert not values_match(math.inf, -math.inf, "f64")
    assert values_match(0.0, 1e-9, "f64")
