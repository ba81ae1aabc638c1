"""The scalar tier: i32/i64/f32/f64 values in, values out."""

from __future__ import annotations

from .chat import Message
from .prompts import render
from .request import ScalarRequest
from .runtime import LoadedFunction, WasmRuntime
from .signature import Signature
from .store import FunctionRecord, TestCase
from .synth import Built, TierSpec
from .verify import ParsedTests, TestReport, parse_scalar_tests, run_scalar_tests


def wat_type(signature: Signature) -> str:
    """Return the WAT form of a signature, e.g. ``(param i32 i32) (result i32)``."""
    parts = []
    if signature.params:
        parts.append(f"(param {' '.join(signature.params)})")
    if signature.results:
        parts.append(f"(result {' '.join(signature.results)})")
    return " ".join(parts)


class ScalarSpec(TierSpec):
    """Prompts, checks and tests of the scalar tier."""

    label = ""

    def __init__(self, request: ScalarRequest, runtime: WasmRuntime) -> None:
        super().__init__(request)
        self.scalar = request
        self.runtime = runtime

    def _fields(self) -> dict[str, object]:
        signature = self.scalar.signature
        return {
            "name": self.scalar.name,
            "description": self.scalar.description,
            "signature": signature,
            "wat_type": wat_type(signature),
            "param_count": len(signature.params),
        }

    def messages(self) -> list[Message]:
        return [
            {"role": "system", "content": render("scalar_system")},
            {"role": "user", "content": render("scalar_generate", **self._fields())},
        ]

    def retry_message(self, error: str) -> str:
        return render("scalar_retry", error=error, **self._fields())

    def failure_message(self, case: TestCase) -> str:
        return render(
            "scalar_test_failure",
            inputs=case.inputs,
            expected=case.expected,
            actual=case.actual,
            **self._fields(),
        )

    def tests_messages(self) -> list[Message]:
        return [{"role": "user", "content": render("scalar_tests", **self._fields())}]

    def build(self, wat: str) -> Built:
        compiled = self.runtime.compile(wat)
        self.runtime.check_scalar(compiled, self.scalar.name, self.scalar.signature)
        loaded = LoadedFunction(self.scalar.name, self.scalar.signature, compiled.module)
        return Built(wat=wat, artifact=(compiled, loaded))

    def parse_tests(self, reply: str) -> ParsedTests:
        return parse_scalar_tests(reply, self.scalar.signature)

    def run_tests(self, built: Built, cases: list[TestCase]) -> TestReport:
        _, loaded = built.artifact
        return run_scalar_tests(
            cases, self.scalar.signature, lambda args: self.runtime.call_scalar(loaded, args)
        )

    def make_record(self, built: Built, verified: bool) -> FunctionRecord:
        compiled, _ = built.artifact
        return self.new_record(self.runtime, compiled, built.wat, verified)
