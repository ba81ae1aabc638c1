"""Timing helpers shared by the benchmarks: medians over repeated, auto-sized runs."""

from __future__ import annotations

import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Timing:
    """Median and spread of one measured operation, in seconds per call."""

    label: str
    median: float
    p95: float
    calls: int

    @property
    def micros(self) -> float:
        return self.median * 1e6


def time_call(
    label: str, func: Callable[[], object], repeat: int = 7, min_time: float = 0.2
) -> Timing:
    """Time ``func`` in batches sized to last about ``min_time`` each; report per-call figures."""
    func()
    batch = 1
    while True:
        started = time.perf_counter()
        for _ in range(batch):
            func()
        elapsed = time.perf_counter() - started
        if elapsed >= min_time / 4 or batch >= 1 << 24:
            break
        batch *= 4
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(batch):
            func()
        samples.append((time.perf_counter() - started) / batch)
    samples.sort()
    return Timing(
        label, statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], batch * repeat
    )


def time_each(label: str, func: Callable[[], object], runs: int) -> Timing:
    """Time ``runs`` single calls (for slow operations such as a process start)."""
    func()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return Timing(label, statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], runs)


def machine_description() -> str:
    """One line naming the CPU, core count and Python version of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run_quiet(
    command: list[str], cwd: str | None = None, env: dict[str, str] | None = None
) -> None:
    """Run a command and raise if it fails; its output is discarded."""
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
