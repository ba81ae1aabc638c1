"""Run the performance suite and print Markdown tables with ratios.

Usage: python benchmarks/run.py [--quick] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli_bench
import scalar_bench
import store_bench
from harness import Timing, machine_description


def scalar_table(t: dict[str, Timing]) -> str:
    raw = t["raw"].median
    func = t["func"].median
    rows = [
        "| operation | median µs | × raw C-API | speed-up over Func.__call__ |",
        "|---|---:|---:|---:|",
    ]
    for key in ("raw", "func", "handle", "request", "part0", "part1", "part2", "part3"):
        timing = t[key]
        rows.append(
            f"| {timing.label} | {timing.micros:.2f} | {timing.median / raw:.2f} | {func / timing.median:.1f} |"
        )
    return "\n".join(rows)


def cli_table(t: dict[str, Timing]) -> str:
    floor = t["floor"].median
    rows = ["| command | median ms | p95 ms | × floor |", "|---|---:|---:|---:|"]
    for key in ("floor", "oneshot"):
        timing = t[key]
        rows.append(
            f"| {timing.label} | {timing.median * 1e3:.1f} | {timing.p95 * 1e3:.1f} | {timing.median / floor:.2f} |"
        )
    return "\n".join(rows)


def store_table(t: dict[str, Timing]) -> str:
    rows = ["| stored functions | exact-hit request µs (median) | p95 µs |", "|---:|---:|---:|"]
    for key, timing in t.items():
        rows.append(f"| {key.removeprefix('hit')} | {timing.micros:.1f} | {timing.p95 * 1e6:.1f} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    parser.add_argument("--plot", type=Path, help="write the throughput chart to this PNG file")
    args = parser.parse_args()

    print(f"# qt45 benchmarks — {dt.date.today().isoformat()}")
    print(f"Machine: {machine_description()}\n")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print("## Scalar cache hit (Python API)\n")
        print(scalar_table(scalar_bench.run(folder)), "\n")
        print("## One-shot CLI cache hit\n")
        print(cli_table(cli_bench.run(folder, runs=5 if args.quick else 15)), "\n")
        print("## Exact-hit request latency as the library grows\n")
        sizes = (100, 10_000) if args.quick else (100, 10_000, 100_000)
        print(store_table(store_bench.run(folder, sizes)), "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
