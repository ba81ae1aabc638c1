"""Step output as `[tag] message` lines (the Rust prototype's format), and progress while a model writes."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from .chat import ChatTask

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

TAG_STYLES = {
    "cache": "green",
    "search": "cyan",
    "llm": "magenta",
    "store": "blue",
    "test": "yellow",
    "wasm": "bold",
    "simd": "bold",
    "gpu": "bold",
    "error": "red",
}


MAX_KEPT_LINES = 1_000
"""Step lines a Reporter keeps; older ones are dropped so long sessions use bounded memory."""


class Reporter:
    """Collects the latest step lines; subclasses also print them."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=MAX_KEPT_LINES)

    def request(self, text: str) -> None:
        self.lines.append(text)

    def step(self, tag: str, message: str) -> None:
        self.lines.append(f"  [{tag}] {message}")

    @contextmanager
    def waiting(self, task: ChatTask) -> Iterator[None]:
        yield

    def received(self, characters: int) -> None:
        return None


class PlainReporter(Reporter):
    """Prints step lines as plain text; used by ``qt45 -c`` to keep start-up short."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stdout

    def request(self, text: str) -> None:
        super().request(text)
        print(f"\n{text}", file=self.stream)

    def step(self, tag: str, message: str) -> None:
        super().step(tag, message)
        print(f"  [{tag}] {message}", file=self.stream)

    @contextmanager
    def waiting(self, task: ChatTask) -> Iterator[None]:
        print(
            f"  [llm] {task.kind} {task.name}: waiting for the model…", file=sys.stderr, flush=True
        )
        yield


class ConsoleReporter(Reporter):
    """Prints step lines to stdout and a spinner on stderr while the model writes."""

    def __init__(self, console: Console | None = None, progress: bool = True) -> None:
        from rich.console import Console

        super().__init__()
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False)
        self.show_progress = progress
        self._status: Status | None = None
        self._task: ChatTask | None = None

    def request(self, text: str) -> None:
        from rich.text import Text

        super().request(text)
        self.console.print()
        self.console.print(Text(text))

    def step(self, tag: str, message: str) -> None:
        from rich.text import Text

        super().step(tag, message)
        line = Text("  ")
        line.append(f"[{tag}]", style=TAG_STYLES.get(tag, ""))
        line.append(f" {message}")
        self.console.print(line)

    @contextmanager
    def waiting(self, task: ChatTask) -> Iterator[None]:
        from rich.text import Text

        if not self.show_progress:
            yield
            return
        self._task = task
        label = f"[llm] {task.kind} {task.name}: waiting for the model…"
        if not self.err.is_terminal:
            print(f"  {label}", file=sys.stderr, flush=True)
            yield
            return
        with self.err.status(Text(label), spinner="dots") as status:
            self._status = status
            try:
                yield
            finally:
                self._status = None

    def received(self, characters: int) -> None:
        from rich.text import Text

        if self._status is not None and self._task is not None:
            self._status.update(
                Text(f"[llm] {self._task.kind} {self._task.name}: {characters} characters received")
            )
