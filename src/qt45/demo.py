"""The demo: the Rust prototype's sequence of requests, then the library listing and a summary."""

from __future__ import annotations

import time

from rich.console import Console
from rich.text import Text

from .chat import ChatModel, ChatTask, Message
from .commands import library_table
from .config import Config
from .engine import Qt45
from .errors import GpuUnavailable, LlmUnavailable, Qt45Error
from .report import ConsoleReporter, Reporter
from .request import ArrayRequest, Request, ScalarRequest
from .scripted import ScriptedModel
from .signature import Signature, Tier

I32_PAIR = Signature(("i32", "i32"), ("i32",))


def scalar_steps() -> list[Request]:
    """Return the scalar part of the demo, in the Rust prototype's order."""
    return [
        ScalarRequest("add", "adds two integers", I32_PAIR, (10, 20)),
        ScalarRequest("add", "adds two integers", I32_PAIR, (100, 200)),
        ScalarRequest("multiply", "multiplies two integers", I32_PAIR, (5, 5)),
        ScalarRequest("subtract", "subtracts the second integer from the first", I32_PAIR, (50, 8)),
        ScalarRequest("max", "returns the larger of two integers", I32_PAIR, (42, 17)),
        ScalarRequest("negate", "negates an integer", Signature(("i32",), ("i32",)), (42,)),
        ScalarRequest(
            "circle_area",
            "computes the area of a circle from its radius",
            Signature(("f64",), ("f64",)),
            (5.0,),
        ),
        ScalarRequest("answer", "returns 42", Signature((), ("i32",)), ()),
        ScalarRequest("sum", "adds two numbers together", I32_PAIR, (7, 8)),
    ]


def simd_steps() -> list[Request]:
    """Return the SIMD part of the demo: one function, generated once, then served from the library."""
    description = "element-wise addition of two f32 arrays"
    return [
        ArrayRequest(Tier.SIMD, "vec_add_f32", description, ((1, 2, 3, 4), (10, 20, 30, 40))),
        ArrayRequest(
            Tier.SIMD, "vec_add_f32", description, ((100, 200, 300, 400), (0.5, 0.5, 0.5, 0.5))
        ),
    ]


def gpu_steps() -> list[Request]:
    """Return the GPU part of the demo."""
    description = "double all elements of an f32 array"
    return [
        ArrayRequest(Tier.GPU, "gpu_double_f32", description, (tuple(range(1, 9)),)),
        ArrayRequest(Tier.GPU, "gpu_double_f32", description, ((10, 20, 30, 40),)),
    ]


class UnreachableModel:
    """A stand-in for a model server that did not respond, so later requests fail at once."""

    label = "unreachable model server"

    def __init__(self, error: LlmUnavailable) -> None:
        self.error = error
        self.calls = 0

    def chat(self, messages: list[Message], task: ChatTask) -> str:
        raise self.error


def run_steps(lib: Qt45, reporter: Reporter, steps: list[Request]) -> int:
    """Run requests in order; returns how many failed (each failure is reported, not raised).

    After the model server is found unreachable once, requests that need it
    fail at once instead of waiting for the connection retries again.
    """
    failures = 0
    for request in steps:
        try:
            lib.request(request)
        except LlmUnavailable as exc:
            failures += 1
            reporter.step("error", str(exc))
            lib.use_model(UnreachableModel(exc))
        except Qt45Error as exc:
            failures += 1
            reporter.step("error", str(exc))
    return failures


def choose_model(config: Config, console: Console) -> ChatModel | None:
    """Pick the demo's model: the configured server, or scripted replies when none responds."""
    if config.llm == "scripted":
        console.print(Text("[llm] replaying the project's scripted model replies (--llm scripted)"))
        return ScriptedModel(config.llm_url)
    if config.llm == "auto":
        from .llm import LlmClient

        probe = LlmClient(config)
        try:
            reachable = probe.is_reachable()
        finally:
            probe.close()
        if not reachable:
            console.print(
                Text(
                    f"[llm] no LLM is reachable at {config.llm_url}; replaying the project's "
                    "scripted model replies through the real pipeline"
                )
            )
            return ScriptedModel(config.llm_url)
    return None


def run_demo(config: Config, console: Console | None = None) -> int:
    """Run the demo against ``config.db_path``; returns the exit status (0 when every step ran)."""
    console = console or Console(highlight=False, soft_wrap=True)
    model = choose_model(config, console)
    reporter = ConsoleReporter(console, progress=config.show_progress)
    started = time.monotonic()
    failures = 0

    with Qt45(config, model=model, reporter=reporter) as lib:
        failures += run_steps(lib, reporter, scalar_steps())

        console.print()
        console.print(Text("=== SIMD Demo ===", style="bold"))
        failures += run_steps(lib, reporter, simd_steps())

        console.print()
        console.print(Text("=== GPU Demo ===", style="bold"))
        try:
            lib.gpu_context()
        except GpuUnavailable as exc:
            reporter.step("gpu", f"skipping the GPU demo: {exc}")
        else:
            failures += run_steps(lib, reporter, gpu_steps())

        lib.store.flush()
        console.print()
        console.print(Text("--- Function Library ---", style="bold"))
        console.print(library_table(lib.list_functions()))
        console.print()
        console.print(Text(f"[demo] {lib.summary(time.monotonic() - started)}"))

    if failures:
        console.print(Text(f"[demo] {failures} request(s) failed; see the messages above"))
    return 1 if failures else 0
