"""Signatures and conversion of call arguments at the type boundaries."""

from __future__ import annotations

import math

import pytest

from qt45 import ArgumentError, ParseError, Signature
from qt45.signature import convert_argument, format_value


@pytest.mark.parametrize(
    ("text", "params", "results"),
    [
        ("(i32, i32) -> i32", ("i32", "i32"), ("i32",)),
        ("() -> f64", (), ("f64",)),
        ("(i64)", ("i64",), ()),
        ("(f32) -> (f32, i32)", ("f32",), ("f32", "i32")),
        ("( i32 ,i64 )->f32", ("i32", "i64"), ("f32",)),
    ],
)
def test_parse_signature(text: str, params: tuple[str, ...], results: tuple[str, ...]) -> None:
    signature = Signature.parse(text)

    assert signature.params == params
    assert signature.results == results


def test_signature_text_round_trip() -> None:
    for text in ("(i32, i32) -> i32", "() -> f64", "(f32) -> (f32, i32)"):
        assert str(Signature.parse(text)) == text


@pytest.mark.parametrize("text", ["i32 -> i32", "(i32", "(int) -> i32", "(i32) -> v128", ""])
def test_invalid_signature(text: str) -> None:
    with pytest.raises(ParseError):
        Signature.parse(text)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (2**31 - 1, "i32", 2**31 - 1),
        (-(2**31), "i32", -(2**31)),
        (2**63 - 1, "i64", 2**63 - 1),
        (3, "f64", 3.0),
        (0.1, "f32", 0.10000000149011612),
    ],
)
def test_convert_accepts(value: float, kind: str, expected: float) -> None:
    assert convert_argument(value, kind, 1) == expected


@pytest.mark.parametrize(
    ("value", "kind", "fragment"),
    [
        (2**31, "i32", "out of range"),
        (-(2**31) - 1, "i32", "out of range"),
        (2**63, "i64", "out of range"),
        (2.5, "i32", "must be an integer"),
        (True, "i32", "must be a number"),
        ("7", "f64", "must be a number"),
        (1e39, "f32", "float32 maximum"),
    ],
)
def test_convert_rejects(value: object, kind: str, fragment: str) -> None:
    with pytest.raises(ArgumentError) as info:
        convert_argument(value, kind, 2)

    assert fragment in str(info.value)
    assert "argument 2" in str(info.value)


def test_convert_keeps_nan_and_infinity() -> None:
    assert math.isnan(convert_argument(math.nan, "f64", 1))
    assert convert_argument(-math.inf, "f32", 1) == -math.inf


def test_format_value() -> None:
    assert format_value(30) == "30"
    assert format_value(78.53981633974483, "f64") == "78.53981633974483"
    assert format_value(100.0, "f64") == "100"
    assert format_value(0.10000000149011612, "f32") == "0.1"
    assert format_value(math.nan) == "NaN"
    assert format_value(-math.inf) == "-inf"
