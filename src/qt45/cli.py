"""Command line: ``qt45`` (REPL), ``qt45 -c LINE``, ``qt45 --demo``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from . import __version__
from .config import Config
from .embeddings import resolve_model_name
from .errors import Qt45Error


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
    parser.add_argument("--llm-url", help="OpenAI-compatible base URL (env QT45_LLM_URL)")
    parser.add_argument("--model", help="model name (default qwen2.5-coder:7b; env QT45_MODEL)")
    parser.add_argument(
        "--llm",
        choices=("auto", "http", "scripted"),
        help="model source: the server (http), the project's scripted replies, or auto: the "
        "server, and scripted replies in the demo when no server answers (env QT45_LLM)",
    )
    parser.add_argument(
        "--llm-timeout", type=float, metavar="SECONDS", help="wait for one reply (default 120)"
    )
    parser.add_argument(
        "--no-stream", action="store_true", help="ask for whole replies instead of streams"
    )
    parser.add_argument(
        "--max-attempts", type=int, metavar="N", help="generation attempts (default 3)"
    )
    parser.add_argument(
        "--fuel", type=int, metavar="UNITS", help="CPU limit per call in fuel units (env QT45_FUEL)"
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        metavar="MB",
        help="linear-memory cap per instance (env QT45_MEMORY_MB)",
    )
    parser.add_argument(
        "--stack-kb", type=int, metavar="KB", help="wasm stack limit (env QT45_STACK_KB)"
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
    resolve_model_name(config.embedding_model)
    if config.max_attempts < 1:
        raise Qt45Error(f"--max-attempts must be at least 1, got {config.max_attempts}")
    return replace(config, limits=limits) if limits != config.limits else config


def _positive(value: int, flag: str) -> int:
    if value <= 0:
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
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False)
    try:
        return _run(args, console)
    except Qt45Error as exc:
        if args.json:
            import json

            print(json.dumps({"ok": False, "error": str(exc)}))
        else:
            err.print(f"error: {exc}", markup=False, style="red")
        if os.environ.get("QT45_DEBUG") == "1":
            raise
        return 1
    except KeyboardInterrupt:
        err.print("interrupted", style="yellow")
        return 130


def _run(args: argparse.Namespace, console: Console) -> int:
    from .demo import run_demo
    from .engine import Qt45
    from .repl import make_reporter, run_one_shot, run_repl

    config = config_from_args(args)
    if args.demo:
        return run_demo(config, console)
    reporter = make_reporter(console, args.json, config.show_progress)
    with Qt45(config, reporter=reporter) as lib:
        if args.line is not None:
            return run_one_shot(lib, console, args.line, args.json)
        return run_repl(lib, console)
