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

import arrays_bench
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
    for key in ("raw", "func", "handle", "request", "part0", "part1", "part2"):
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


def array_table(rows: list[arrays_bench.Row], baseline: dict[tuple[str, int], float]) -> str:
    lines = [
        "| operation | elements | median ms | elements/s | GB/s moved | × numpy throughput |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        reference = baseline.get((row.operation, row.elements))
        ratio = f"{reference / row.timing.median:.2f}" if reference else "1.00"
        lines.append(
            f"| {row.operation} | {row.elements:,} | {row.timing.median * 1e3:.3f} | "
            f"{row.elements_per_s / 1e6:,.1f} M | {row.gb_per_s:.2f} | {ratio} |"
        )
    return "\n".join(lines)


NUMPY_BASELINE = {
    "simd vec_add, copy in+out": "numpy a + b",
    "simd vec_add, zero-copy": "numpy a + b",
    "simd sum, zero-copy": "numpy a.sum()",
    "gpu gpu_double_f32 (per request)": "numpy a * 2",
}


def baselines(rows: list[arrays_bench.Row]) -> dict[tuple[str, int], float]:
    """Map (operation, elements) to the median time of its numpy counterpart."""
    numpy_times = {(row.operation, row.elements): row.timing.median for row in rows}
    return {
        (row.operation, row.elements): numpy_times[(NUMPY_BASELINE[row.operation], row.elements)]
        for row in rows
        if row.operation in NUMPY_BASELINE
    }


def plot(path: Path, rows: list[arrays_bench.Row], adapter: str) -> None:
    """Draw elements/s against array size for every operation on one log-log chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for operation in dict.fromkeys(row.operation for row in rows):
        points = [(row.elements, row.elements_per_s) for row in rows if row.operation == operation]
        axes.plot(*zip(*points, strict=True), marker="o", label=operation)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("elements per array")
    axes.set_ylabel("elements per second")
    axes.set_title(
        f"qt45 array tiers vs numpy — {machine_description()}\nGPU adapter: {adapter}", fontsize=9
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


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
        array_sizes = (
            (1_000, 65_536, 1_000_000) if args.quick else (1_000, 65_536, 1_000_000, 16_000_000)
        )
        simd, adapter, gpu, bandwidth = arrays_bench.run(folder, array_sizes)
        print("## Array tiers against numpy\n")
        print(array_table(simd, baselines(simd)), "\n")
        print(f"GPU adapter: {adapter}\n")
        print(array_table(gpu, baselines(gpu)), "\n")
        print(
            f"Memory bandwidth (numpy copy of {bandwidth.elements:,} f32): "
            f"{bandwidth.gb_per_s:.2f} GB/s moved\n"
        )
        if args.plot is not None:
            plot(args.plot, simd + gpu, adapter)
            print(f"Plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
