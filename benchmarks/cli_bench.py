"""One-shot CLI cache hits against the start-up floor of Python plus wasmtime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness import Timing, run_quiet, time_each

ADD_LINE = 'add "adds two integers" (i32, i32) -> i32 : 10, 20'


def run(folder: Path, runs: int = 15) -> dict[str, Timing]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("QT45_")}
    # Both commands should load cached bytecode, as an installed package does; without
    # this, a PYTHONDONTWRITEBYTECODE=1 environment recompiles qt45 on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["XDG_DATA_HOME"] = str(folder / "xdg")
    env["QT45_DB"] = str(folder / "cli.db")
    env["QT45_LLM"] = "scripted"
    run_quiet([sys.executable, "-m", "qt45", "-c", ADD_LINE], env=env)
    qt45_command = [sys.executable, "-m", "qt45", "-c", ADD_LINE]
    floor_command = [sys.executable, "-c", "import wasmtime"]

    def start(command: list[str]) -> None:
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)

    return {
        "floor": time_each("python -c 'import wasmtime'", lambda: start(floor_command), runs),
        "oneshot": time_each("qt45 -c (cache hit)", lambda: start(qt45_command), runs),
    }
