"""Command line: ``qt45`` (REPL), ``qt45 -c LINE``, ``qt45 --demo``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from . import __version__
from .config import Config
from .errors import Qt45Error

Number = TypeVar("Number", int, float)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qt45",
        description="A self-improving function library: functions are written once by an LLM "
        "as WebAssembly, verified, stored, and then served from the library.",
    )
    parser.add_argument("-c", dest="line", metavar="LINE", help="run one REPL line and exit")
    parser.add_argument("--json", action="store_true", help="with -c: print one JSON object")
    parser.add_argument("--demo", action="store_true", help="run the built-in demo")
    parser.add_argument("--db", type=Path, help="library file (default ./qt45.db; env QT45_DB)")
    parser.add_argument(
        "--llm-url",
        help="OpenAI-compatible base URL (default http://localhost:11434/v1; env QT45_LLM_URL)",
    )
    parser.add_argument("--model", help="model name (default qwen2.5-coder:7b; env QT45_MODEL)")
    parser.add_argument(
        "--llm",
        choices=("auto", "http", "scripted"),
        help="model source: the server (http), the project's scripted replies, or auto: the "
        "server, and scripted replies in the demo when no server answers (env QT45_LLM)",
    )
    parser.add_argument(
        "--llm-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds to wait for one model reply (default 120; env QT45_LLM_TIMEOUT)",
    )
    parser.add_argument(
        "--no-stream", action="store_true", help="ask for whole replies instead of streams"
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="generation attempts per request (default 3; env QT45_MAX_ATTEMPTS)",
    )
    parser.add_argument(
        "--fuel",
        type=int,
        metavar="UNITS",
        help="CPU limit per scalar call in fuel units (default 1000000000; env QT45_FUEL)",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        metavar="MB",
        help="linear-memory cap per instance in MiB (default 256; env QT45_MEMORY_MB)",
    )
    parser.add_argument(
        "--stack-kb",
        type=int,
        metavar="KB",
        help="wasm stack limit in KiB (default 512; env QT45_STACK_KB)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        metavar="SECONDS",
        help="wall-clock limit per call in seconds (default 10; env QT45_CALL_TIMEOUT)",
    )
    parser.add_argument(
        "--table-elements",
        type=int,
        metavar="N",
        help="maximum elements of one wasm table (default 10000; env QT45_TABLE_ELEMENTS)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        metavar="N",
        help="maximum wasm instances per call (default 4; env QT45_INSTANCES)",
    )
    parser.add_argument(
        "--gpu-buffer-mb",
        type=int,
        metavar="MB",
        help="total GPU buffer size one GPU call may allocate (default 256; env "
        "QT45_GPU_BUFFER_MB)",
    )
    parser.add_argument(
        "--gpu-workgroups",
        type=int,
        metavar="N",
        help="workgroups one GPU call may run over all its dispatches (default 1048576; env "
        "QT45_GPU_WORKGROUPS)",
    )
    parser.add_argument(
        "--gpu-timeout",
        type=float,
        metavar="SECONDS",
        help="wall-clock limit for the GPU work of one GPU call (default 10; env QT45_GPU_TIMEOUT)",
    )
    parser.add_argument(
        "--embedding-model",
        metavar="NAME",
        help="embedding model of the search: all-MiniLM-L6-v2 (default, ships with qt45), "
        "bge-small-en-v1.5 (downloaded on first use) or none (env QT45_EMBEDDING_MODEL)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")
    parser.add_argument("--version", action="version", version=f"qt45 {__version__}")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """Build the Config: flags override QT45_* variables, which override defaults."""
    config = Config.from_env(
        db_path=args.db,
        llm_url=args.llm_url,
        model=args.model,
        llm=args.llm,
        llm_timeout=args.llm_timeout,
        max_attempts=args.max_attempts,
        verbose=args.verbose or None,
        stream=False if args.no_stream else None,
        show_progress=False if args.json else None,
        embedding_model=args.embedding_model,
    )
    limits = config.limits
    if args.fuel is not None:
        limits = replace(limits, fuel=_positive(args.fuel, "--fuel"))
    if args.memory_mb is not None:
        limits = replace(limits, memory_bytes=_positive(args.memory_mb, "--memory-mb") * 2**20)
    if args.stack_kb is not None:
        limits = replace(limits, wasm_stack_bytes=_positive(args.stack_kb, "--stack-kb") * 1024)
    if args.call_timeout is not None:
        limits = replace(limits, call_timeout_s=_positive(args.call_timeout, "--call-timeout"))
    if args.table_elements is not None:
        limits = replace(limits, table_elements=_positive(args.table_elements, "--table-elements"))
    if args.instances is not None:
        limits = replace(limits, instances=_positive(args.instances, "--instances"))
    if args.gpu_buffer_mb is not None:
        megabytes = _positive(args.gpu_buffer_mb, "--gpu-buffer-mb")
        limits = replace(limits, gpu_buffer_bytes=megabytes * 2**20)
    if args.gpu_workgroups is not None:
        limits = replace(limits, gpu_workgroups=_positive(args.gpu_workgroups, "--gpu-workgroups"))
    if args.gpu_timeout is not None:
        limits = replace(limits, gpu_timeout_s=_positive(args.gpu_timeout, "--gpu-timeout"))
    if config.embedding_model != Config.embedding_model:
        from .embeddings import resolve_model_name  # checked early, but loaded only when needed

        resolve_model_name(config.embedding_model)
    if config.max_attempts < 1:
        raise Qt45Error(f"--max-attempts must be at least 1, got {config.max_attempts}")
    return replace(config, limits=limits) if limits != config.limits else config


def _positive(value: Number, flag: str) -> Number:
    if not value > 0:
        raise Qt45Error(f"{flag} must be a positive number, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qt45`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return _run(args)
    except Qt45Error as exc:
        if args.json:
            import json

            print(json.dumps({"ok": False, "error": str(exc)}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        if os.environ.get("QT45_DEBUG") == "1":
            raise
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from .oneshot import internal_error_message

        if os.environ.get("QT45_DEBUG") == "1":
            raise
        if args.json:
            import json

            print(json.dumps({"ok": False, "error": internal_error_message(exc)}))
        else:
            print(internal_error_message(exc), file=sys.stderr)
        return 1


def _check_flag_combinations(args: argparse.Namespace) -> None:
    if args.json and args.line is None:
        raise Qt45Error("--json works only with -c LINE, e.g. qt45 -c '.list' --json")
    if args.demo and args.line is not None:
        raise Qt45Error("--demo and -c cannot be combined; run them one after the other")


def _run(args: argparse.Namespace) -> int:
    from .engine import Qt45
    from .watchdog import SIGINT_WATCHER

    _check_flag_combinations(args)
    config = config_from_args(args)
    if args.line is not None:
        from .oneshot import run_one_shot
        from .report import PlainReporter, Reporter

        reporter = Reporter() if args.json else PlainReporter()
        with Qt45(config, reporter=reporter) as lib, SIGINT_WATCHER.active():
            return run_one_shot(lib, args.line, args.json)

    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if args.demo:
        from .demo import run_demo

        with SIGINT_WATCHER.active():
            return run_demo(config, console)

    from .repl import run_repl
    from .report import ConsoleReporter

    with Qt45(config, reporter=ConsoleReporter(console, progress=config.show_progress)) as lib:
        return run_repl(lib, console)
