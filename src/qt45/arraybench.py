"""Benchmarks of stored SIMD and GPU functions on pseudo-random inputs (the ``.bench`` command)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .arrays import array_input_count
from .errors import ArgumentError
from .signature import Tier
from .store import FunctionRecord

if TYPE_CHECKING:
    from .engine import Qt45

MIN_RUNS = 5
MAX_RUNS = 51
TARGET_SECONDS = 2.0
"""Runs continue past MIN_RUNS until this much time was measured or MAX_RUNS were made."""
MAX_BENCH_ELEMENTS = 100_000_000
SEED = 45


@dataclass(frozen=True)
class BenchResult:
    """Timing of one function on ``elements`` elements per input."""

    name: str
    tier: Tier
    elements: int
    inputs: int
    runs: int
    median_s: float

    @property
    def bytes_moved(self) -> int:
        """Bytes read and written per call: every input array plus the result array."""
        return 4 * self.elements * (self.inputs + 1)

    @property
    def elements_per_s(self) -> float:
        return self.elements / self.median_s if self.median_s > 0 else float("inf")

    @property
    def gb_per_s(self) -> float:
        return self.bytes_moved / self.median_s / 1e9 if self.median_s > 0 else float("inf")


def bench(lib: Qt45, name: str, elements: int) -> list[BenchResult]:
    """Time every SIMD and GPU function named ``name`` on ``elements`` pseudo-random elements.

    Each function runs once to warm up, then at least MIN_RUNS times; the
    median of the measured runs is reported. Calls are not counted as uses.
    Raises NotFoundError for an unknown name and ArgumentError for a scalar
    function or an element count out of range.
    """
    if not 0 < elements <= MAX_BENCH_ELEMENTS:
        raise ArgumentError(
            f"the element count must be between 1 and {MAX_BENCH_ELEMENTS:,}, got {elements:,}"
        )
    records = [r for r in lib.lookup(name) if r.tier in (Tier.SIMD, Tier.GPU)]
    if not records:
        raise ArgumentError(
            f"{name!r} is a scalar function; .bench times SIMD and GPU functions only"
        )
    return [_bench_one(lib, record, elements) for record in records]


def _bench_one(lib: Qt45, record: FunctionRecord, elements: int) -> BenchResult:
    input_count = array_input_count(record.signature)
    generator = np.random.default_rng(SEED)
    inputs = [
        generator.uniform(-1000.0, 1000.0, elements).astype(np.float32) for _ in range(input_count)
    ]
    lib.arrays.run(record, inputs)

    times: list[float] = []
    while len(times) < MIN_RUNS or (sum(times) < TARGET_SECONDS and len(times) < MAX_RUNS):
        started = time.perf_counter()
        lib.arrays.run(record, inputs)
        times.append(time.perf_counter() - started)
    return BenchResult(
        record.name, record.tier, elements, input_count, len(times), statistics.median(times)
    )
