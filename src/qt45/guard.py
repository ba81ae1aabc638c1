"""The reuse guard: a stored function serves a new request only if it passes the request's tests.

Search finds functions that look alike, and near-opposites (add and
subtract, min and max, floor and ceil) look very alike. Before a candidate is
reused, the guard requests test cases of the *request* from the model, with
the same prompt the generation loop uses, and runs the candidate against
them in wasmtime. One model call confirms or rejects any number of candidates, and
when no candidate passes, the generation loop takes the same test cases
instead of asking again, so the guard adds no model call to a generation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .chat import ChatModel, ChatTask
from .errors import LlmError, LlmUnavailable, Qt45Error
from .report import Reporter
from .request import Request, ScalarRequest
from .runtime import WasmRuntime
from .scalar import ScalarSpec
from .signature import Tier
from .store import FunctionRecord, TestCase
from .verify import ParsedTests, run_scalar_tests

MIN_CASES = 3
"""A reuse needs at least this many valid cases (fewer for a function with no parameters)."""


@dataclass(frozen=True)
class Verdict:
    """The guard's decision on one candidate."""

    accepted: bool
    passed: int
    total: int
    reason: str


def _request_key(request: Request) -> tuple[str, str, str, str]:
    return (request.name, request.description, request.signature_text, str(request.tier))


class TestGuard:
    """Confirms a candidate by running it against model-written tests for the request."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self, model: Callable[[], ChatModel], runtime: WasmRuntime, reporter: Reporter
    ) -> None:
        self._model = model
        self.runtime = runtime
        self.reporter = reporter
        self.llm_calls = 0
        """Model calls made by the guard (one per request that reached it)."""
        self.checks = 0
        self.rejections = 0
        self._tests: dict[tuple[str, str, str, str], ParsedTests] = {}

    def supports(self, request: Request) -> bool:
        """Return True for requests whose tier the guard can test (the scalar tier)."""
        return isinstance(request, ScalarRequest) and request.tier == Tier.SCALAR

    def confirm(self, request: Request, candidate: FunctionRecord) -> Verdict:
        """Run ``candidate`` against the request's test cases; accepted only if all pass.

        Raises LlmUnavailable when no model server responds, as generation would.
        """
        if not isinstance(request, ScalarRequest) or not self.supports(request):
            return Verdict(False, 0, 0, f"reuse in the {request.tier} tier is not checked yet")
        self.checks += 1
        tests = self.tests_for(request)
        needed = MIN_CASES if request.signature.params else 1
        if len(tests.cases) < needed:
            self.rejections += 1
            return Verdict(
                False, 0, len(tests.cases), f"only {len(tests.cases)} valid test case(s)"
            )
        try:
            loaded = self.runtime.load(candidate)
        except Qt45Error as exc:
            self.rejections += 1
            return Verdict(False, 0, len(tests.cases), f"it cannot be loaded: {exc}")
        cases = [TestCase(inputs=case.inputs, expected=case.expected) for case in tests.cases]
        report = run_scalar_tests(
            cases, request.signature, lambda args: self.runtime.call_scalar(loaded, args)
        )
        if report.all_passed:
            return Verdict(True, report.passed, report.total, "every test case passed")
        self.rejections += 1
        failure = report.first_failure()
        assert failure is not None
        reason = f"inputs {failure.inputs}: expected {failure.expected}, got {failure.actual}"
        return Verdict(False, report.passed, report.total, reason)

    def tests_for(self, request: ScalarRequest) -> ParsedTests:
        """Return the request's test cases, asking the model once per request."""
        key = _request_key(request)
        cached = self._tests.get(key)
        if cached is not None:
            return cached
        spec = ScalarSpec(request, self.runtime)
        model = self._model()
        self.llm_calls += 1
        try:
            reply = model.chat(spec.tests_messages(), ChatTask("tests", request.name, request.tier))
        except LlmUnavailable:
            raise
        except LlmError as exc:
            self.reporter.step("search", f"could not get test cases to check a reuse: {exc}")
            tests = ParsedTests()
        else:
            tests = spec.parse_tests(reply)
            for note in tests.dropped:
                self.reporter.step("test", f"dropped malformed test: {note}")
        self._tests[key] = tests
        return tests

    def take_tests(self, request: Request) -> ParsedTests | None:
        """Hand over (and forget) the test cases fetched for ``request``, for the generation loop.

        Returns None when there are none or none were valid, so that the loop requests new ones.
        """
        tests = self._tests.pop(_request_key(request), None)
        return tests if tests is not None and tests.cases else None

    def forget(self, request: Request) -> None:
        """Drop the cached test cases of ``request``."""
        self._tests.pop(_request_key(request), None)
