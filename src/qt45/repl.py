"""The interactive REPL and the one-shot ``-c`` form, both thin layers over Qt45."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from .commands import COMMANDS, run_command
from .engine import Qt45
from .errors import Qt45Error
from .parser import Command, parse_line
from .report import ConsoleReporter, Reporter
from .request import CallResult

PROMPT = "qt45> "
QUIT_COMMANDS = ("quit", "exit", "q")


def history_path() -> Path:
    """REPL history file: QT45_HISTORY, or qt45/history under the user's data folder."""
    if os.environ.get("QT45_HISTORY"):
        return Path(os.environ["QT45_HISTORY"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qt45" / "history"


def print_error(console: Console, exc: BaseException) -> None:
    """Print one error line; with QT45_DEBUG=1 the traceback follows."""
    console.print(Text(f"error: {exc}", style="red"))
    if os.environ.get("QT45_DEBUG") == "1":
        console.print_exception()


def execute_line(lib: Qt45, console: Console, line: str) -> bool:
    """Run one line; returns False when the line asks to quit. Errors are printed, not raised."""
    try:
        parsed = parse_line(line)
        if parsed is None:
            return True
        if isinstance(parsed, Command):
            if parsed.name in QUIT_COMMANDS:
                return False
            run_command(lib, console, parsed)
            return True
        lib.request(parsed)
    except Qt45Error as exc:
        print_error(console, exc)
    except KeyboardInterrupt:
        console.print(Text("interrupted", style="yellow"))
    return True


def _interactive_lines(lib: Qt45) -> Iterator[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        history: FileHistory | InMemoryHistory = FileHistory(str(path))
    except OSError:
        history = InMemoryHistory()

    def words() -> list[str]:
        names = sorted({record.name for record in lib.list_functions()})
        return [f".{name}" for name in COMMANDS] + ["simd", "gpu", *names]

    completer = WordCompleter(words, WORD=True)
    session: PromptSession[str] = PromptSession(history=history, completer=completer)
    while True:
        try:
            yield session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return


def run_repl(lib: Qt45, console: Console, lines: Iterable[str] | None = None) -> int:
    """Read lines (from a terminal with history and completion, or from piped input) until EOF."""
    if lines is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            console.print(Text(f"qt45 — library {lib.config.db_path}. Type .help for commands."))
            lib.warm_up()
            lines = _interactive_lines(lib)
        else:
            lines = (line.rstrip("\n") for line in sys.stdin)
    for line in lines:
        if not execute_line(lib, console, line):
            break
    return 0


def run_one_shot(lib: Qt45, console: Console, line: str, as_json: bool) -> int:
    """Run one REPL line for a script; with ``as_json`` print one JSON object and nothing else."""
    if not as_json:
        try:
            parsed = parse_line(line)
            if isinstance(parsed, Command):
                run_command(lib, console, parsed)
            elif parsed is not None:
                lib.request(parsed)
        except Qt45Error as exc:
            print_error(console, exc)
            return 1
        return 0

    try:
        parsed = parse_line(line)
        if parsed is None or isinstance(parsed, Command):
            raise Qt45Error("--json takes a request line, not a dot-command or a blank line")
        result = lib.request(parsed)
    except Qt45Error as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(json.dumps(result_to_json(result, lib.reporter)))
    return 0


def result_to_json(result: CallResult, reporter: Reporter) -> dict[str, Any]:
    """Describe a result as JSON-safe data; NaN and infinities become strings."""
    record = result.function
    return {
        "ok": True,
        "name": record.name,
        "signature": record.signature,
        "tier": str(record.tier),
        "values": [_json_number(v) for v in _flatten(result.values)],
        "source": result.source,
        "verified": result.verified,
        "llm_calls": result.llm_calls,
        "steps": list(reporter.lines),
    }


def _flatten(values: list[Any]) -> list[Any]:
    if len(values) == 1 and hasattr(values[0], "tolist"):
        return list(values[0].tolist())
    return [v.tolist() if hasattr(v, "tolist") else v for v in values]


def _json_number(value: Any) -> Any:
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def make_reporter(console: Console, as_json: bool, progress: bool) -> Reporter:
    return Reporter() if as_json else ConsoleReporter(console, progress=progress)
