"""The one-shot form ``qt45 -c LINE`` for scripts, kept free of heavy imports.

A cache hit through ``qt45 -c`` should cost little more than starting Python
and importing wasmtime, so this path prints plain text and loads rich only
for dot-commands.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from typing import Any

from .engine import Qt45
from .errors import Qt45Error
from .parser import Command, parse_line
from .report import Reporter
from .request import CallResult

log = logging.getLogger(__name__)


def run_one_shot(lib: Qt45, line: str, as_json: bool) -> int:
    """Run one REPL line; with ``as_json`` print one JSON object and nothing else."""
    if as_json:
        return _run_json(lib, line)
    try:
        parsed = parse_line(line)
        if isinstance(parsed, Command):
            from rich.console import Console

            from .commands import run_command

            run_command(lib, Console(highlight=False, soft_wrap=True), parsed)
        elif parsed is not None:
            lib.request(parsed)
    except Qt45Error as exc:
        print_plain_error(exc)
        return 1
    except Exception as exc:
        log.error("unexpected %s: %s", type(exc).__name__, exc)
        print_plain_error(RuntimeError(internal_error_message(exc)))
        return 1
    return 0


def internal_error_message(exc: BaseException) -> str:
    """Return the one line shown for an exception that is a bug in qt45, not a user error."""
    return f"internal error: {type(exc).__name__}: {exc}; rerun with QT45_DEBUG=1 for the traceback"


def print_plain_error(exc: BaseException) -> None:
    """Print one error line to stderr; with QT45_DEBUG=1 the traceback follows."""
    print(f"error: {exc}", file=sys.stderr)
    if os.environ.get("QT45_DEBUG") == "1":
        import traceback

        traceback.print_exception(exc)


def _run_json(lib: Qt45, line: str) -> int:
    try:
        parsed = parse_line(line)
        if parsed is None or isinstance(parsed, Command):
            raise Qt45Error("--json takes a request line, not a dot-command or a blank line")
        result = lib.request(parsed)
    except Qt45Error as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    except Exception as exc:
        log.error("unexpected %s: %s", type(exc).__name__, exc)
        print(json.dumps({"ok": False, "error": internal_error_message(exc)}))
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
    if not isinstance(value, float) or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
