"""Verification: parse model-written test cases leniently, check them, run them."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ArgumentError, Qt45Error
from .extract import fenced_blocks, strip_thinking
from .signature import INT_RANGES, Scalar, Signature, convert_argument
from .store import TestCase

MAX_CASES = 20
MAX_TEST_REPLY_CHARS = 1_000_000
REL_TOLERANCE = 1e-4
ABS_TOLERANCE = 1e-6
"""Floats compare equal within these tolerances: model-written expectations are often rounded."""

_INPUT_KEYS = ("inputs", "input", "args", "arguments", "params")
_EXPECTED_KEYS = ("expected", "output", "expected_output", "result", "results", "outputs")


@dataclass
class ParsedTests:
    """Valid cases and a note for each case that was dropped."""

    cases: list[TestCase] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    missing: str | None = None
    """Coverage the cases still lack after a second request; such a function stays unverified."""


@dataclass
class TestReport:
    """Outcome of running a function's cases."""

    cases: list[TestCase]

    @property
    def passed(self) -> int:
        return sum(case.passed for case in self.cases)

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total

    def first_failure(self) -> TestCase | None:
        return next((case for case in self.cases if not case.passed), None)


def parse_json_lenient(reply: str) -> Any:
    """Parse the JSON in a model reply: fences, prose, trailing commas, NaN and Infinity allowed.

    Raises ValueError when no JSON value can be found.
    """
    text = strip_thinking(reply[:MAX_TEST_REPLY_CHARS])
    for candidate in [*fenced_blocks(text), text]:
        value = _parse_candidate(candidate)
        if value is not None:
            return value
    raise ValueError("no JSON array or object found in the reply")


def _parse_candidate(text: str) -> Any:
    starts = [i for i in (text.find("["), text.find("{")) if i != -1]
    if not starts:
        return None
    body = text[min(starts) :]
    body = re.sub(r",\s*([\]}])", r"\1", body)
    body = re.sub(r"(?<![\w.\"])-?(?:inf|infinity)(?![\w\"])", _infinity, body, flags=re.IGNORECASE)
    body = re.sub(r"(?<![\w.\"])nan(?![\w\"])", "NaN", body, flags=re.IGNORECASE)
    decoder = json.JSONDecoder()
    try:
        value, _ = decoder.raw_decode(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return _leading_items(body, decoder) if body.startswith("[") else None
    return value


def _leading_items(body: str, decoder: json.JSONDecoder) -> list[Any] | None:
    """Decode the complete elements at the start of an array that does not parse whole.

    Keeps the cases of a reply that was cut off, or cut to MAX_TEST_REPLY_CHARS,
    and stops after one element more than MAX_CASES so the caller can say so.
    """
    items: list[Any] = []
    position = 1
    while len(items) <= MAX_CASES:
        while position < len(body) and body[position] in " \t\r\n,":
            position += 1
        if position >= len(body) or body[position] == "]":
            break
        try:
            item, position = decoder.raw_decode(body, position)
        except (ValueError, RecursionError):
            break
        items.append(item)
    return items or None


def _infinity(match: re.Match[str]) -> str:
    return "-Infinity" if match.group(0).startswith("-") else "Infinity"


def case_list(value: Any) -> list[Any]:
    """Return the list of raw cases in a parsed reply (a list, or an object holding one)."""
    if isinstance(value, dict):
        for key in ("tests", "test_cases", "cases", "testCases"):
            if isinstance(value.get(key), list):
                return list(value[key])
        return [value]
    if isinstance(value, list):
        return value
    return []


def split_case(raw: Any) -> tuple[Any, Any]:
    """Return (inputs, expected) of one raw case; raises ValueError if either is missing."""
    if isinstance(raw, dict):
        inputs = next((raw[key] for key in _INPUT_KEYS if key in raw), None)
        expected = next((raw[key] for key in _EXPECTED_KEYS if key in raw), None)
        if inputs is None or not any(key in raw for key in _EXPECTED_KEYS):
            raise ValueError("a case needs 'inputs' and 'expected'")
        return inputs, expected
    if isinstance(raw, list) and len(raw) == 2:
        return raw[0], raw[1]
    raise ValueError("a case must be an object with 'inputs' and 'expected'")


def parse_tests(reply: str, make_case: Callable[[Any], TestCase]) -> ParsedTests:
    """Parse a test reply, turning each raw case into a TestCase with ``make_case``.

    ``make_case`` raises ValueError or a Qt45Error for a case that does not
    fit; such cases are dropped with a note, as are cases beyond MAX_CASES.
    """
    parsed = ParsedTests()
    try:
        raw_cases = case_list(parse_json_lenient(reply))
    except ValueError as exc:
        parsed.dropped.append(str(exc))
        return parsed
    for index, raw in enumerate(raw_cases[:MAX_CASES], start=1):
        try:
            parsed.cases.append(make_case(raw))
        except (ValueError, Qt45Error) as exc:
            parsed.dropped.append(f"case {index}: {exc}")
    if len(raw_cases) > MAX_CASES:
        parsed.dropped.append(
            f"{len(raw_cases) - MAX_CASES} cases beyond the first {MAX_CASES} were ignored"
        )
    return parsed


def parse_scalar_tests(reply: str, signature: Signature) -> ParsedTests:
    """Parse a test reply for a scalar function, dropping cases that do not fit ``signature``."""
    return parse_tests(reply, lambda raw: _scalar_case(raw, signature))


def _scalar_case(raw: Any, signature: Signature) -> TestCase:
    inputs, expected = split_case(raw)
    if not isinstance(inputs, list):
        inputs = [inputs]
    if len(signature.results) == 1 and not (isinstance(expected, list) and len(expected) == 1):
        expected = [expected]
    if expected is None:
        expected = []
    if not isinstance(expected, list):
        raise ValueError(f"expected must be a list of {len(signature.results)} values")
    if len(inputs) != len(signature.params):
        raise ValueError(f"has {len(inputs)} inputs, the signature takes {len(signature.params)}")
    if len(expected) != len(signature.results):
        raise ValueError(
            f"expects {len(expected)} results, the signature returns {len(signature.results)}"
        )
    converted = [
        convert_argument(v, t, i + 1)
        for i, (v, t) in enumerate(zip(inputs, signature.params, strict=True))
    ]
    for value, kind in zip(expected, signature.results, strict=True):
        _check_expected(value, kind)
    return TestCase(inputs=converted, expected=list(expected))


def _check_expected(value: Any, kind: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentError(f"expected value {value!r} is not a number")
    if kind in INT_RANGES:
        if isinstance(value, float) and not value.is_integer():
            raise ArgumentError(f"expected value {value!r} is not an integer ({kind})")
        low, high = INT_RANGES[kind]
        if not low <= int(value) <= 2 * high + 1:
            raise ArgumentError(f"expected value {value!r} does not fit {kind}")


def values_match(expected: Any, actual: Any, kind: str) -> bool:
    """Compare one result: ints exactly (modulo the type's width), floats within tolerance."""
    if kind in INT_RANGES:
        bits = 32 if kind == "i32" else 64
        return int(expected) % 2**bits == int(actual) % 2**bits
    expected_f, actual_f = float(expected), float(actual)
    if math.isnan(expected_f) or math.isnan(actual_f):
        return math.isnan(expected_f) and math.isnan(actual_f)
    if math.isinf(expected_f) or math.isinf(actual_f):
        return expected_f == actual_f
    return math.isclose(expected_f, actual_f, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)


def run_scalar_tests(
    cases: list[TestCase], signature: Signature, call: Callable[[list[Scalar]], list[Scalar]]
) -> TestReport:
    """Run each case through ``call``, recording actual results; a trap fails the case."""
    for case in cases:
        try:
            actual = call(case.inputs)
        except Qt45Error as exc:
            case.actual = [f"error: {exc}"]
            case.passed = False
            continue
        case.actual = list(actual)
        case.passed = len(actual) == len(case.expected) and all(
            values_match(e, a, k)
            for e, a, k in zip(case.expected, actual, signature.results, strict=True)
        )
    return TestReport(cases)
