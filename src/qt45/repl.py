"""The interactive REPL, a thin layer over Qt45."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from rich.console import Console
from rich.text import Text

from .commands import COMMANDS, run_command
from .engine import Qt45
from .errors import Qt45Error
from .oneshot import internal_error_message
from .parser import Command, parse_line
from .watchdog import SIGINT_WATCHER

log = logging.getLogger(__name__)

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


def print_internal_error(console: Console, exc: BaseException) -> None:
    """Print one line for an unexpected exception and log it; QT45_DEBUG=1 adds the traceback."""
    log.error(
        "unexpected %s: %s", type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG)
    )
    console.print(Text(internal_error_message(exc), style="red"))
    if os.environ.get("QT45_DEBUG") == "1":
        console.print_exception()


def execute_line(lib: Qt45, console: Console, line: str) -> bool:
    """Run one line; returns False when the line is a quit command. Errors are printed, not raised."""
    try:
        parsed = parse_line(line)
        if parsed is None:
            return True
        if isinstance(parsed, Command):
            if parsed.name in QUIT_COMMANDS:
                return False
            run_command(lib, console, parsed)
            return True
        with SIGINT_WATCHER.active():
            lib.request(parsed)
    except Qt45Error as exc:
        print_error(console, exc)
    except KeyboardInterrupt:
        console.print(Text("interrupted", style="yellow"))
    except Exception as exc:
        print_internal_error(console, exc)
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
