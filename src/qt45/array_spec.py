"""What the SIMD and GPU tiers share in the generation loop: prompts, test parsing and runs."""

from __future__ import annotations

import json
from abc import abstractmethod

import numpy as np

from .chat import Message
from .prompts import render
from .request import ArrayRequest
from .runtime import WasmRuntime
from .store import TestCase
from .synth import Built, TierSpec
from .verify import ParsedTests, TestReport
from .verify_arrays import first_mismatch, has_tail_case, parse_array_tests, run_array_tests

PREVIEW_ELEMENTS = 32
"""Arrays longer than this are shortened in messages to the model."""


def memory_layout(input_count: int) -> str:
    """Describe where the host puts each input and the free space, for ``input_count`` inputs."""
    lines = []
    for index in range(input_count):
        offset = "ptr" if index == 0 else f"ptr + {4 * index}*N"
        lines.append(f"- input {index + 1}: N f32 at byte offset {offset}")
    lines.append(
        f"- free space for the result: N f32 at byte offset ptr + {4 * input_count}*N "
        "(memory is already large enough)"
    )
    return "\n".join(lines)


def preview(values: list[object]) -> str:
    """JSON text of an array, shortened to its first elements when it is long."""
    if len(values) <= PREVIEW_ELEMENTS:
        return json.dumps(values)
    head = json.dumps(values[:PREVIEW_ELEMENTS])[:-1]
    return f"{head}, … ({len(values)} elements in all)]"


class ArraySpec(TierSpec):
    """Prompts and verification of an array tier; subclasses build and run candidates."""

    prompt_prefix = ""
    """Prefix of the tier's prompt files, e.g. ``simd`` for ``simd_generate.txt``."""

    def __init__(self, request: ArrayRequest, runtime: WasmRuntime) -> None:
        super().__init__(request)
        self.array = request
        self.runtime = runtime
        self.input_count = len(request.inputs)

    def _fields(self) -> dict[str, object]:
        return {
            "name": self.array.name,
            "description": self.array.description,
            "signature": self.array.signature_text,
            "input_count": self.input_count,
            "layout": memory_layout(self.input_count),
        }

    def messages(self) -> list[Message]:
        return [
            {"role": "system", "content": render(f"{self.prompt_prefix}_system")},
            {"role": "user", "content": render(f"{self.prompt_prefix}_generate", **self._fields())},
        ]

    def retry_message(self, error: str) -> str:
        return render(f"{self.prompt_prefix}_retry", error=error, **self._fields())

    def failure_message(self, case: TestCase) -> str:
        actual = case.actual or []
        return render(
            f"{self.prompt_prefix}_test_failure",
            length=len(case.expected),
            inputs=", ".join(preview(array) for array in case.inputs),
            expected=preview(case.expected),
            actual=preview(actual),
            mismatch=self._mismatch(case),
            **self._fields(),
        )

    def tests_messages(self) -> list[Message]:
        return [
            {"role": "user", "content": render(f"{self.prompt_prefix}_tests", **self._fields())}
        ]

    def parse_tests(self, reply: str) -> ParsedTests:
        return parse_array_tests(reply, self.input_count)

    def missing_tests(self, tests: ParsedTests) -> str | None:
        if not tests.cases or has_tail_case(tests.cases):
            return None
        return "no case has a length that is not a multiple of 4"

    def missing_tests_message(self, missing: str) -> str:
        return render("array_tests_missing", missing=missing)

    def run_tests(self, built: Built, cases: list[TestCase]) -> TestReport:
        return run_array_tests(cases, lambda inputs: self.call_built(built, inputs))

    def describe_case(self, case: TestCase) -> str:
        return f"length {len(case.expected)}: {self._mismatch(case)}"

    @abstractmethod
    def call_built(self, built: Built, inputs: list[np.ndarray]) -> np.ndarray:
        """Run a candidate once on f32 inputs."""

    def _mismatch(self, case: TestCase) -> str:
        actual = case.actual or []
        if actual and isinstance(actual[0], str):
            return str(actual[0])
        index = first_mismatch(
            np.asarray(case.expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
        )
        if index is None:
            return "all elements match"
        if index >= min(len(case.expected), len(actual)):
            return f"expected {len(case.expected)} elements, got {len(actual)}"
        return (
            f"first wrong element at index {index}: expected {case.expected[index]}, "
            f"got {actual[index]}"
        )
