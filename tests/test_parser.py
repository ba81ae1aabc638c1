"""REPL line parsing."""

from __future__ import annotations

import math

import pytest

from qt45 import ArrayRequest, ParseError, ScalarRequest, Signature, Tier, parse_line
from qt45.parser import Command


def test_scalar_request_with_args() -> None:
    parsed = parse_line('add "adds two integers" (i32, i32) -> i32 : 10, 20')

    assert parsed == ScalarRequest(
        "add", "adds two integers", Signature(("i32", "i32"), ("i32",)), (10, 20)
    )


def test_scalar_request_without_params() -> None:
    parsed = parse_line('answer "returns 42" () -> i32')

    assert isinstance(parsed, ScalarRequest)
    assert parsed.signature == Signature((), ("i32",))
    assert parsed.args == ()


def test_number_forms() -> None:
    parsed = parse_line('f "mixed" (i64, f64, f64, f64, f32) -> f64 : -0x10, 2.5e3, nan, -inf, .5')

    assert isinstance(parsed, ScalarRequest)
    assert parsed.args[0] == -16
    assert parsed.args[1] == 2500.0
    assert math.isnan(parsed.args[2])
    assert parsed.args[3] == -math.inf
    assert parsed.args[4] == 0.5


def test_escaped_quote_in_description() -> None:
    parsed = parse_line(r'quote "says \"hi\"" () -> i32')

    assert isinstance(parsed, ScalarRequest)
    assert parsed.description == 'says "hi"'


def test_multiple_results_signature() -> None:
    parsed = parse_line('divmod "quotient and remainder" (i32, i32) -> (i32, i32) : 7, 2')

    assert isinstance(parsed, ScalarRequest)
    assert parsed.signature.results == ("i32", "i32")


def test_array_request() -> None:
    parsed = parse_line('simd vec_add_f32 "element-wise add" [1,2,3,4] [5,6,7,8]')

    assert isinstance(parsed, ArrayRequest)
    assert parsed.tier == Tier.SIMD
    assert parsed.inputs == ((1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0))
    assert parsed.signature_text == "(f32[], f32[]) -> f32[]"


def test_gpu_request_with_empty_array() -> None:
    parsed = parse_line('gpu gpu_double_f32 "double all elements" []')

    assert isinstance(parsed, ArrayRequest)
    assert parsed.tier == Tier.GPU
    assert parsed.inputs == ((),)


def test_function_named_simd_is_scalar() -> None:
    parsed = parse_line('simd "a scalar function called simd" () -> i32')

    assert isinstance(parsed, ScalarRequest)
    assert parsed.name == "simd"


def test_dot_command() -> None:
    assert parse_line(".info add") == Command("info", ("add",))
    assert parse_line("  .LIST ") == Command("list")


def test_blank_and_comment_lines() -> None:
    assert parse_line("") is None
    assert parse_line("   ") is None
    assert parse_line("# a comment") is None


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("add 10, 20", "missing the quoted description"),
        ('add "adds" : 1, 2', "missing the signature"),
        ('add "adds (i32, i32) -> i32', "no closing quote"),
        ('add "adds" (i32, i33) -> i32 : 1, 2', "invalid type 'i33'"),
        ('add "adds" (i32, i32) -> i32 : 1, two', "invalid argument 'two'"),
        ('add "adds" i32 -> i32', "missing the signature"),
        ('9add "adds" (i32) -> i32', "invalid function name '9add'"),
        ('add "" (i32) -> i32', "description of 'add' is empty"),
        ('simd v "x" [1, 2] [3]', "same length"),
        ('simd v "x" [1, 2', "no closing bracket"),
        ('simd v "x"', "at least one array"),
        (".", "needs a name"),
    ],
)
def test_parse_errors(line: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_line(line)

    assert fragment in str(info.value)


def test_parse_error_shows_expected_form() -> None:
    with pytest.raises(ParseError) as info:
        parse_line("add 10, 20")

    assert 'name "description" (i32, i32) -> i32 : 10, 20' in str(info.value)
