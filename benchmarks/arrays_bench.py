"""SIMD and GPU throughput against numpy, plus this machine's memory bandwidth.

vec_add_f32 and gpu_double_f32 are the demo's functions, written into a
temporary library by the scripted model replies. The reduction is a
hand-written v128 module stored directly: it measures the runtime, not the
model. numpy runs ``a + b`` and ``a.sum()`` on the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import Timing, time_each
from qt45 import CallResult, Config, FunctionRecord, Qt45, Reporter, Tier
from qt45.demo import gpu_steps, simd_steps

SUM_NAME = "sum_f32"
SUM_WAT = """(module
  (memory (export "memory") 1)
  (func (export "sum_f32") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $end16 i32) (local $end64 i32) (local $bytes i32) (local $p i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128) (local $total f32)
    (local.set $bytes (i32.mul (local.get $len) (i32.const 4)))
    (local.set $end64 (i32.and (local.get $bytes) (i32.const -64)))
    (local.set $end16 (i32.and (local.get $bytes) (i32.const -16)))
    ;; four independent accumulators, 16 floats per iteration
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $i) (local.get $end64)))
      (local.set $p (i32.add (local.get $ptr) (local.get $i)))
      (local.set $a (f32x4.add (local.get $a) (v128.load offset=0 (local.get $p))))
      (local.set $b (f32x4.add (local.get $b) (v128.load offset=16 (local.get $p))))
      (local.set $c (f32x4.add (local.get $c) (v128.load offset=32 (local.get $p))))
      (local.set $d (f32x4.add (local.get $d) (v128.load offset=48 (local.get $p))))
      (local.set $i (i32.add (local.get $i) (i32.const 64)))
      (br $vec)))
    (block $done4 (loop $vec4
      (br_if $done4 (i32.ge_u (local.get $i) (local.get $end16)))
      (local.set $a (f32x4.add (local.get $a)
        (v128.load (i32.add (local.get $ptr) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $vec4)))
    (local.set $a (f32x4.add (f32x4.add (local.get $a) (local.get $b))
                             (f32x4.add (local.get $c) (local.get $d))))
    (local.set $total (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
      (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a)))))
    (block $tail_done (loop $tail
      (br_if $tail_done (i32.ge_u (local.get $i) (local.get $bytes)))
      (local.set $total (f32.add (local.get $total)
        (f32.load (i32.add (local.get $ptr) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $tail)))
    (f32.store (i32.add (local.get $ptr) (local.get $bytes)) (local.get $total))
    (i32.add (local.get $ptr) (local.get $bytes))))"""

GPU_MAX_ELEMENTS = 65_535 * 64
"""The demo's shader uses one 1-D dispatch of 64-wide workgroups, at most 65,535 of them."""


@dataclass
class Row:
    """One measured operation at one size; ``moved`` is the bytes read plus written."""

    operation: str
    elements: int
    timing: Timing
    moved: int

    @property
    def elements_per_s(self) -> float:
        return self.elements / self.timing.median

    @property
    def gb_per_s(self) -> float:
        return self.moved / self.timing.median / 1e9


def runs_for(elements: int) -> int:
    return 31 if elements <= 1_000_000 else 7


def store_sum_function(lib: Qt45) -> None:
    runtime = lib.arrays.runtime
    compiled = runtime.compile(SUM_WAT)
    native, tag = runtime.serialize(compiled)
    record = FunctionRecord(
        name=SUM_NAME,
        signature="(f32[]) -> f32[]",
        tier=Tier.SIMD,
        description="sum of an f32 array, written at index 0 of the result",
        wat=SUM_WAT,
        wasm=compiled.wasm,
        compiled=native,
        compiled_tag=tag,
        verified=True,
    )
    lib.store.save(record, [])


def memory_bandwidth(elements: int) -> Row:
    """numpy's copy of one f32 array into another: the machine's practical bandwidth."""
    source = np.random.default_rng(1).random(elements, dtype=np.float32)
    target = np.empty_like(source)
    timing = time_each("numpy copy (memory bandwidth)", lambda: np.copyto(target, source), 15)
    return Row("numpy copy", elements, timing, 8 * elements)


def simd_rows(lib: Qt45, sizes: tuple[int, ...]) -> list[Row]:
    vec_add = lib.array_function("vec_add_f32", "element-wise addition of two f32 arrays", 2)
    sum_f32 = lib.array_function(SUM_NAME, "sum of an f32 array", 1)
    rng = np.random.default_rng(7)
    rows: list[Row] = []
    for n in sizes:
        runs = runs_for(n)
        a = rng.random(n, dtype=np.float32)
        b = rng.random(n, dtype=np.float32)
        out = np.empty(n, dtype=np.float32)
        rows.append(Row("numpy a + b", n, time_each("", lambda a=a, b=b: a + b, runs), 12 * n))
        rows.append(
            Row(
                "simd vec_add, copy in+out",
                n,
                time_each("", lambda a=a, b=b, out=out: vec_add(a, b, out=out), runs),
                12 * n,
            )
        )
        slot_a, slot_b = vec_add.inputs(n)
        np.copyto(slot_a, a)
        np.copyto(slot_b, b)
        rows.append(
            Row(
                "simd vec_add, zero-copy",
                n,
                time_each("", lambda n=n: vec_add.run(n), runs),
                12 * n,
            )
        )
        assert np.array_equal(vec_add.run(n), a + b)

        rows.append(Row("numpy a.sum()", n, time_each("", a.sum, runs), 4 * n))
        (slot,) = sum_f32.inputs(n)
        np.copyto(slot, a)
        rows.append(
            Row(
                "simd sum, zero-copy", n, time_each("", lambda n=n: sum_f32.run(n)[:1], runs), 4 * n
            )
        )
        total = float(sum_f32.run(n)[0]) if n else 0.0
        assert abs(total - float(a.sum(dtype=np.float64))) <= 1e-3 * max(1.0, n)
    return rows


def gpu_rows(lib: Qt45, sizes: tuple[int, ...]) -> tuple[str, list[Row]]:
    adapter = lib.gpu_context().adapter.describe()
    rng = np.random.default_rng(3)
    rows: list[Row] = []
    for n in sizes:
        if n > GPU_MAX_ELEMENTS:
            continue
        a = rng.random(n, dtype=np.float32)

        def call(a: np.ndarray = a) -> CallResult:
            return lib.call_array("gpu", "gpu_double_f32", "double all elements of an f32 array", a)

        rows.append(Row("numpy a * 2", n, time_each("", lambda a=a: a * 2, runs_for(n)), 8 * n))
        rows.append(
            Row(
                "gpu gpu_double_f32 (per request)",
                n,
                time_each("", call, min(runs_for(n), 11)),
                8 * n,
            )
        )
        assert np.array_equal(call().value, a * 2)
    return adapter, rows


def run(folder: Path, sizes: tuple[int, ...]) -> tuple[list[Row], str, list[Row], Row]:
    config = Config(
        db_path=folder / "arrays.db", llm="scripted", key_path=folder / "key", show_progress=False
    )
    with Qt45(config, reporter=Reporter()) as lib:
        lib.request(simd_steps()[0])
        lib.request(gpu_steps()[0])
        store_sum_function(lib)
        simd = simd_rows(lib, sizes)
        adapter, gpu = gpu_rows(lib, sizes)
    bandwidth = memory_bandwidth(max(sizes))
    return simd, adapter, gpu, bandwidth
