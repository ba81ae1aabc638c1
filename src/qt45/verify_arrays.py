"""Verification of array functions: parse model-written array cases, run and compare them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .arrays import to_f32_arrays
from .errors import Qt45Error
from .store import TestCase
from .verify import (
    ABS_TOLERANCE,
    REL_TOLERANCE,
    ParsedTests,
    TestReport,
    parse_tests,
    split_case,
)

MAX_CASE_ELEMENTS = 1_000_000
"""Cases whose arrays hold more elements than this in total are dropped."""
TAIL_WIDTH = 4
"""f32 lanes of one v128 register: lengths that are not a multiple of it exercise the tail loop."""


def parse_array_tests(reply: str, input_count: int) -> ParsedTests:
    """Parse a test reply for an array function with ``input_count`` inputs.

    Cases of the wrong arity, with arrays of different lengths, an expected
    array of another length, non-numbers or too many elements are dropped with
    a note.
    """
    return parse_tests(reply, lambda raw: _array_case(raw, input_count))


def _array_case(raw: Any, input_count: int) -> TestCase:
    inputs, expected = split_case(raw)
    if isinstance(inputs, dict):
        inputs = list(inputs.values())
    if not isinstance(inputs, list):
        raise ValueError("inputs must be a list of arrays")
    if input_count == 1 and all(_is_number(value) for value in inputs):
        inputs = [inputs]
    if isinstance(expected, list) and len(expected) == 1 and isinstance(expected[0], list):
        expected = expected[0]
    if not isinstance(expected, list):
        raise ValueError("expected must be an array of numbers")
    if len(inputs) != input_count:
        raise ValueError(f"has {len(inputs)} input arrays, the function takes {input_count}")
    for position, array in enumerate([*inputs, expected], start=1):
        if not isinstance(array, list) or not all(_is_number(value) for value in array):
            label = "expected" if position > len(inputs) else f"input {position}"
            raise ValueError(f"{label} must be an array of numbers")
    total = sum(len(array) for array in inputs) + len(expected)
    if total > MAX_CASE_ELEMENTS:
        raise ValueError(f"has {total:,} elements; the maximum per case is {MAX_CASE_ELEMENTS:,}")
    arrays = to_f32_arrays(inputs)
    if len(expected) != len(arrays[0]):
        raise ValueError(
            f"expected has {len(expected)} elements, but the inputs have {len(arrays[0])}"
        )
    return TestCase(
        inputs=[array.tolist() for array in arrays], expected=[float(v) for v in expected]
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def first_mismatch(expected: np.ndarray, actual: np.ndarray) -> int | None:
    """Return the index of the first element outside the float tolerance, or None if all match.

    A length difference is a mismatch at the shorter length.
    """
    shared = min(len(expected), len(actual))
    close = np.isclose(
        actual[:shared].astype(np.float64),
        expected[:shared].astype(np.float64),
        rtol=REL_TOLERANCE,
        atol=ABS_TOLERANCE,
        equal_nan=True,
    )
    if not close.all():
        return int(np.argmin(close))
    return None if len(expected) == len(actual) else shared


def run_array_tests(
    cases: list[TestCase], call: Callable[[list[np.ndarray]], np.ndarray]
) -> TestReport:
    """Run each case through ``call``, recording actual results; a trap or error fails the case."""
    for case in cases:
        try:
            actual = call(to_f32_arrays(case.inputs))
        except Qt45Error as exc:
            case.actual = [f"error: {exc}"]
            case.passed = False
            continue
        case.actual = actual.tolist()
        expected = np.asarray(case.expected, dtype=np.float64)
        case.passed = first_mismatch(expected, actual) is None
    return TestReport(cases)


def has_tail_case(cases: list[TestCase]) -> bool:
    """True when some case's arrays have a length that is not a multiple of four."""
    return any(len(case.expected) % TAIL_WIDTH for case in cases)
