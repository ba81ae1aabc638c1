"""The generation loop: ask the model for WAT, compile, check, test, and repair.

The loop is shared by every tier. A ``TierSpec`` supplies what differs: the
prompts, how a candidate is built and checked, how test cases are parsed and
run, and how the stored record is made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from .chat import ChatModel, ChatTask, Message
from .errors import CompileError, LlmError, LlmUnavailable, SynthesisError
from .extract import extract_modules
from .report import Reporter
from .request import Request
from .runtime import CompiledModule, WasmRuntime
from .store import FunctionRecord, TestCase
from .verify import MAX_CASES, ParsedTests, TestReport

MAX_ERROR_CHARS = 2_000


@dataclass
class Built:
    """A candidate module that compiled and met the tier's contract."""

    wat: str
    artifact: Any
    """Whatever the tier needs to run the candidate (a loaded function, a module …)."""


@dataclass
class Synthesis:
    """The outcome of a successful generation: the record to store and its tests."""

    record: FunctionRecord
    built: Built
    tests: list[TestCase]
    verified: bool
    llm_calls: int


class TierSpec(ABC):
    """The parts of generation that differ by tier: prompts, build, tests and record."""

    label: str = ""
    """Prefix in log lines, e.g. ``simd`` gives ``[llm] simd attempt 1/3...``."""

    def __init__(self, request: Request) -> None:
        self.request = request

    @abstractmethod
    def messages(self) -> list[Message]: ...

    @abstractmethod
    def retry_message(self, error: str) -> str: ...

    @abstractmethod
    def failure_message(self, case: TestCase) -> str: ...

    @abstractmethod
    def tests_messages(self) -> list[Message]: ...

    @abstractmethod
    def build(self, wat: str) -> Built:
        """Compile and check one candidate; raises CompileError with a message for the model."""

    @abstractmethod
    def parse_tests(self, reply: str) -> ParsedTests: ...

    @abstractmethod
    def run_tests(self, built: Built, cases: list[TestCase]) -> TestReport: ...

    @abstractmethod
    def make_record(self, built: Built, verified: bool) -> FunctionRecord: ...

    def describe_case(self, case: TestCase) -> str:
        return f"inputs {case.inputs}: expected {case.expected}, got {case.actual}"

    def new_record(
        self,
        runtime: WasmRuntime,
        compiled: CompiledModule,
        wat: str,
        verified: bool,
        shader: str | None = None,
    ) -> FunctionRecord:
        """Build the record to store for this request, with authenticated native code."""
        native, tag = runtime.serialize(compiled)
        return FunctionRecord(
            name=self.request.name,
            signature=self.request.signature_text,
            tier=self.request.tier,
            description=self.request.description,
            wat=wat,
            wasm=compiled.wasm,
            compiled=native,
            compiled_tag=tag,
            shader=shader,
            verified=verified,
        )

    def missing_tests(self, tests: ParsedTests) -> str | None:
        """Return what the parsed cases fail to cover, or None when they suffice.

        The loop sends ``missing_tests_message`` to the model once. A gap that
        remains keeps the function unverified.
        """
        return None

    def missing_tests_message(self, missing: str) -> str:
        return missing


class Synthesizer:
    """Runs the attempt loop of one request against a chat model."""

    def __init__(self, model: ChatModel, reporter: Reporter, max_attempts: int = 3) -> None:
        self.model = model
        self.reporter = reporter
        self.max_attempts = max(1, max_attempts)

    def synthesize(self, spec: TierSpec, tests: ParsedTests | None = None) -> Synthesis:
        """Generate, build and verify a function; raises SynthesisError if no attempt compiles.

        A candidate that compiles but fails a test is fed back once per
        remaining attempt. If no attempt passes, the last compiled candidate
        is returned unverified. ``tests``, when given, are test cases already
        written for this request by the reuse guard, so none are requested.
        """
        name = spec.request.name
        prefix = f"{spec.label} " if spec.label else ""
        messages = spec.messages()
        calls_before = self.model.calls
        best: tuple[Built, TestReport | None] | None = None
        last_error = ""

        for attempt in range(1, self.max_attempts + 1):
            self.reporter.step("llm", f"{prefix}attempt {attempt}/{self.max_attempts}...")
            kind = "generate" if attempt == 1 else "retry"
            reply = self.model.chat(messages, ChatTask(kind, name, spec.request.tier))
            messages.append({"role": "assistant", "content": reply})

            try:
                built = self._build_first(spec, reply)
            except CompileError as exc:
                last_error = _shorten(str(exc))
                self.reporter.step("llm", f"{prefix}compilation failed: {_first_line(last_error)}")
                messages.append({"role": "user", "content": spec.retry_message(last_error)})
                continue
            self.reporter.step("llm", f"{prefix}compilation successful")

            if tests is None:
                tests = self._request_tests(spec)
            if not tests.cases:
                best = (built, None)
                break

            report = spec.run_tests(built, _fresh(tests.cases))
            best = (built, report)
            if report.all_passed:
                break
            failure = report.first_failure()
            assert failure is not None
            self.reporter.step(
                "test", f"{report.passed}/{report.total} passed — {spec.describe_case(failure)}"
            )
            messages.append({"role": "user", "content": spec.failure_message(failure)})

        if best is None:
            raise SynthesisError(
                f"could not generate {name!r}: {self.max_attempts} attempt(s) failed, the last with: "
                f"{_first_line(last_error)}. Nothing was stored. Try again, describe the function "
                "more precisely, raise --max-attempts, or use a stronger model."
            )
        missing = tests.missing if tests is not None else None
        return self._finish(spec, best, missing, self.model.calls - calls_before)

    def _build_first(self, spec: TierSpec, reply: str) -> Built:
        candidates = extract_modules(reply)
        if not candidates:
            raise CompileError(
                "the reply contains no (module ...) form; reply with one complete WAT module"
            )
        first_error: CompileError | None = None
        for wat in candidates:
            try:
                return spec.build(wat)
            except CompileError as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def _request_tests(self, spec: TierSpec) -> ParsedTests:
        messages = spec.tests_messages()
        tests = self._ask_tests(spec, messages)
        missing = spec.missing_tests(tests)
        if missing is None:
            return tests

        self.reporter.step("test", f"asking for more test cases: {missing}")
        messages.append({"role": "user", "content": spec.missing_tests_message(missing)})
        more = self._ask_tests(spec, messages)
        merged = ParsedTests(_merge_cases(tests.cases, more.cases), tests.dropped + more.dropped)
        merged.missing = spec.missing_tests(merged)
        return merged

    def _ask_tests(self, spec: TierSpec, messages: list[Message]) -> ParsedTests:
        """Send ``messages`` and parse the reply; the reply is appended to ``messages``."""
        name = spec.request.name
        try:
            reply = self.model.chat(messages, ChatTask("tests", name, spec.request.tier))
        except LlmUnavailable:
            raise
        except LlmError as exc:
            self.reporter.step("test", f"could not get test cases: {exc}")
            return ParsedTests()
        messages.append({"role": "assistant", "content": reply})
        tests = spec.parse_tests(reply)
        for note in tests.dropped:
            self.reporter.step("test", f"dropped malformed test: {note}")
        return tests

    def _finish(
        self,
        spec: TierSpec,
        best: tuple[Built, TestReport | None],
        missing: str | None,
        calls: int,
    ) -> Synthesis:
        built, report = best
        verified = report is not None and report.all_passed and missing is None
        if report is None:
            self.reporter.step("test", "no valid test cases — stored unverified")
        elif report.all_passed and missing is not None:
            self.reporter.step(
                "test", f"{report.passed}/{report.total} passed — stored unverified: {missing}"
            )
        elif verified:
            self.reporter.step("test", f"{report.passed}/{report.total} passed — verified")
        else:
            self.reporter.step("test", f"{report.passed}/{report.total} passed — stored unverified")
        tests = report.cases if report is not None else []
        return Synthesis(spec.make_record(built, verified), built, tests, verified, calls)


def _merge_cases(first: list[TestCase], second: list[TestCase]) -> list[TestCase]:
    """Return the cases of both lists without repeats, at most MAX_CASES of them."""
    merged: list[TestCase] = []
    seen: set[str] = set()
    for case in [*first, *second]:
        key = repr((case.inputs, case.expected))
        if key not in seen:
            seen.add(key)
            merged.append(case)
    return merged[:MAX_CASES]


def _fresh(cases: list[TestCase]) -> list[TestCase]:
    return [TestCase(inputs=case.inputs, expected=case.expected) for case in cases]


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:6])[:300] if lines else "unknown error"


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " …"
