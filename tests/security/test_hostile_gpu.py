"""Hostile GPU-tier modules: each call stops with a clear message, the host goes on, and the
library is unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import make_config
from fakeserver import FakeLlmServer
from libtools import ListModel, snapshot, store_array
from qt45 import (
    CompileError,
    Config,
    GpuBusy,
    GpuContext,
    Limits,
    Qt45,
    Reporter,
    Tier,
    TrapError,
)
from qt45.arrays import to_f32_arrays
from qt45.gpu_spec import check_gpu_module
from qt45.gpuhost import GpuCall, run_gpu
from qt45.runtime import WasmRuntime
from test_gpu import DOUBLE_TESTS, IMPORTS, double_module, fenced, open_adapter

GPU_BUFFER_LIMIT = 1 << 20
WORKGROUP_LIMIT = 1000

# Each invocation runs data[1] iterations. Lavapipe (Mesa 22.3) stops the
# loops of one invocation after about 65,535 iterations, so there the number
# of workgroups sets the running time.
SPIN_WGSL = (
    r"@group(0) @binding(0) var<storage, read_write> data: array<f32>;\0a"
    r"@compute @workgroup_size(64)\0a"
    r"fn main(@builtin(global_invocation_id) id: vec3<u32>) {\0a"
    r"  var x = id.x;\0a"
    r"  let n = u32(data[1]);\0a"
    r"  for (var i = 0u; i < n; i = i + 1u) {\0a    x = x * 1664525u + 1013904223u;\0a  }\0a"
    r"  if x == 7u {\0a    data[0] = 1.0;\0a  }\0a}\0a"
)

# gpu_spin(input): copies input[0..2] to a buffer, then dispatches SPIN_WGSL on
# input[0] workgroups, so that input [workgroups, iterations] sets the work.
GPU_SPIN = f"""(module{IMPORTS}
  (data (i32.const 4096) "{SPIN_WGSL}")
  (func (export "gpu_spin") (param $ptr i32) (param $len i32) (result i32)
    (local $buf i32)
    (local.set $buf (call $alloc (i32.const 16)))
    (call $write (local.get $buf) (local.get $ptr) (i32.const 8))
    (call $dispatch (i32.const 4096) (i32.const 0) (local.get $buf)
      (i32.trunc_f32_u (f32.load (local.get $ptr))))
    (local.get $ptr)))"""


def hostile(name: str, body: str) -> str:
    """A GPU-tier module exporting ``name``, which runs ``body`` and returns offset 0."""
    return f"""(module{IMPORTS}
  (data (i32.const 4096) "{SPIN_WGSL}")
  (func (export "{name}") (param $ptr i32) (param $len i32) (result i32)
    (local $buf i32) (local $i i32)
    {body}
    i32.const 0))"""


ALLOC_16 = "(local.set $buf (call $alloc (i32.const 16)))\n"

HOSTILE_CASES = [
    pytest.param(
        "(call $write (i32.const 0) (i32.const 0) (i32.const 4))",
        "gpu.write_buffer: handle 0 is not a buffer of this call (0 allocated; handles come "
        "from gpu.alloc)",
        id="write-unallocated-handle",
    ),
    pytest.param(
        ALLOC_16 + "(call $read (i32.const 99) (i32.const 0) (i32.const 4))",
        "gpu.read_buffer: handle 99 is not a buffer of this call (1 allocated",
        id="read-bogus-handle",
    ),
    pytest.param(
        ALLOC_16 + "(call $dispatch (i32.const 4096) (i32.const 0) (i32.const -1) (i32.const 1))",
        "gpu.dispatch_shader: handle -1 is not a buffer of this call",
        id="dispatch-negative-handle",
    ),
    pytest.param(
        ALLOC_16 + "(call $write (local.get $buf) (i32.const 65532) (i32.const 8))",
        "gpu.write_buffer: ptr 65532 + len 8 is outside the module's memory (65536 bytes)",
        id="write-past-memory-end",
    ),
    pytest.param(
        ALLOC_16 + "(call $write (local.get $buf) (i32.const 2147483640) (i32.const 16))",
        "gpu.write_buffer: ptr 2147483640 + len 16 is outside the module's memory",
        id="write-pointer-near-i32-max",
    ),
    pytest.param(
        ALLOC_16 + "(call $read (local.get $buf) (i32.const -4) (i32.const 4))",
        "gpu.read_buffer: ptr -4 + len 4 is outside the module's memory (65536 bytes)",
        id="read-negative-pointer",
    ),
    pytest.param(
        ALLOC_16 + "(call $read (local.get $buf) (i32.const 0) (i32.const -2147483648))",
        "gpu.read_buffer: len -2147483648 is negative",
        id="read-negative-length",
    ),
    pytest.param(
        ALLOC_16 + "(call $read (local.get $buf) (i32.const 0) (i32.const 20))",
        "gpu.read_buffer: len 20 exceeds the buffer's size of 16 bytes",
        id="read-past-buffer-end",
    ),
    pytest.param(
        ALLOC_16 + "(call $write (local.get $buf) (i32.const 0) (i32.const 3))",
        "gpu.write_buffer: len 3 is not a multiple of 4 bytes",
        id="write-partial-word",
    ),
    pytest.param(
        ALLOC_16
        + "(call $dispatch (i32.const 1000000) (i32.const 64) (local.get $buf) (i32.const 1))",
        "gpu.dispatch_shader: shader_ptr 1000000 is outside the module's memory (65536 bytes)",
        id="dispatch-shader-outside-memory",
    ),
    pytest.param(
        ALLOC_16
        + "(call $dispatch (i32.const 4096) (i32.const 64) (local.get $buf) (i32.const -1))",
        "gpu.dispatch_shader: -1 workgroups is outside this adapter's range of 0 to",
        id="dispatch-negative-workgroups",
    ),
    pytest.param(
        ALLOC_16
        + "(call $dispatch (i32.const 4096) (i32.const 64) (local.get $buf) (i32.const 70000))",
        "gpu.dispatch_shader: 70000 workgroups is outside this adapter's range of 0 to",
        id="dispatch-over-adapter-maximum",
    ),
    pytest.param(
        ALLOC_16
        + "(call $dispatch (i32.const 4096) (i32.const 64) (local.get $buf) (i32.const 600))\n"
        + "(call $dispatch (i32.const 4096) (i32.const 64) (local.get $buf) (i32.const 600))",
        "gpu.dispatch_shader: 1,200 workgroups in one call exceed the limit of 1,000; raise it "
        "with --gpu-workgroups or QT45_GPU_WORKGROUPS",
        id="workgroups-over-call-limit",
    ),
    pytest.param(
        "(drop (call $alloc (i32.const 2147483647)))",
        "gpu.alloc: 2,147,483,647 bytes exceed",
        id="alloc-huge",
    ),
    pytest.param(
        "(drop (call $alloc (i32.const -16)))",
        "gpu.alloc: size -16 is negative",
        id="alloc-negative",
    ),
    pytest.param(
        "(drop (call $alloc (i32.const 600000)))\n(drop (call $alloc (i32.const 600000)))",
        "gpu.alloc: 1,200,000 bytes of buffers in one call exceed the GPU buffer limit of "
        "1,048,576 bytes; raise it with --gpu-buffer-mb or QT45_GPU_BUFFER_MB",
        id="buffers-over-call-limit",
    ),
    pytest.param(
        """(loop $more
      (drop (call $alloc (i32.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 100))))""",
        "gpu.alloc: one call may allocate at most 64 buffers",
        id="too-many-buffers",
    ),
]


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> GpuContext:
    """The shared GPU context, warmed up so that a first dispatch's setup does not count."""
    context = open_adapter()
    runtime = WasmRuntime(Limits(), tmp_path_factory.mktemp("gpu") / "module.key")
    compiled = runtime.compile(double_module())
    call = GpuCall(
        context, "gpu_double_f32", check_gpu_module(compiled, "gpu_double_f32"), Limits()
    )
    run_gpu(runtime, call, compiled.module, to_f32_arrays([[1.0, 2.0]]))
    return context


@pytest.fixture
def config(db_path: Path) -> Config:
    limits = Limits(
        fuel=20_000_000,
        call_timeout_s=2.0,
        gpu_buffer_bytes=GPU_BUFFER_LIMIT,
        gpu_workgroups=WORKGROUP_LIMIT,
    )
    config = make_config(db_path, limits=limits)
    store_array(config, "gpu_double_f32", Tier.GPU, double_module())
    return config


@pytest.fixture
def lib(context: GpuContext, config: Config) -> Iterator[Qt45]:
    model = ListModel([], when_empty=AssertionError("no model call expected"))
    with Qt45(config, model=model) as instance:
        yield instance


def assert_host_survives(lib: Qt45) -> None:
    result = lib.call_array("gpu", "gpu_double_f32", "doubles", [1, 2, 3])

    assert result.value.tolist() == [2, 4, 6]


def call_hostile(lib: Qt45, config: Config, name: str, wat: str, *inputs: object) -> TrapError:
    """Store ``wat`` as ``name``, call it, and check the library and the host are intact."""
    store_array(config, name, Tier.GPU, wat)
    before = snapshot(config.db_path)

    with pytest.raises(TrapError) as caught:
        lib.call_array("gpu", name, f"test function {name}", *(inputs or ([1.0, 2.0],)))

    assert snapshot(config.db_path) == before
    assert_host_survives(lib)
    assert caught.value.function == name
    return caught.value


@pytest.mark.parametrize(("body", "message"), HOSTILE_CASES)
def test_hostile_host_call_traps(lib: Qt45, config: Config, body: str, message: str) -> None:
    error = call_hostile(lib, config, "hostile", hostile("hostile", body))

    assert str(error).startswith(f"'hostile' trapped: {message}")


def test_wasm_loop_in_gpu_module_stops(lib: Qt45, config: Config) -> None:
    error = call_hostile(lib, config, "spin_wasm", hostile("spin_wasm", "(loop $l (br $l))"))

    # The array tiers run without fuel metering, so the wall-clock limit stops it.
    assert error.cause == "time limit exceeded"
    assert "--call-timeout or QT45_CALL_TIMEOUT" in str(error)


def test_gpu_timeout_before_dispatch(context: GpuContext, tmp_path: Path) -> None:
    # With the deadline already passed, the shader is never submitted and the
    # context stays usable.
    runtime = WasmRuntime(Limits(gpu_timeout_s=1e-9), tmp_path / "module.key")
    compiled = runtime.compile(double_module())
    segments = check_gpu_module(compiled, "gpu_double_f32")
    call = GpuCall(context, "gpu_double_f32", segments, runtime.limits)

    with pytest.raises(TrapError) as caught:
        run_gpu(runtime, call, compiled.module, to_f32_arrays([[1.0]]))

    assert "The shader was not started" in str(caught.value)
    assert context.usable
    assert call.buffers == []


def with_import(wat: str, extra_import: str) -> str:
    """Add ``extra_import`` to a module built on IMPORTS (imports come before the memory)."""
    memory = '(memory (export "memory") 1)'
    return wat.replace(memory, f"{extra_import}\n  {memory}", 1)


WASI_IMPORT = (
    '(import "wasi_snapshot_preview1" "fd_write" '
    "(func $fd_write (param i32 i32 i32 i32) (result i32)))"
)


@pytest.mark.parametrize(
    ("extra_import", "message"),
    [
        (WASI_IMPORT, "imports wasi_snapshot_preview1.fd_write, but GPU functions may import only"),
        (
            '(import "gpu" "alloc2" (func (param i32) (result i32)))',
            "imports gpu.alloc2, but GPU functions may import only gpu.alloc (i32) -> i32",
        ),
        (
            '(import "gpu" "read_buffer" (func $read2 (param i32 i32 i64)))',
            "the import gpu.read_buffer has type (i32, i32, i64) -> (), but it must be "
            "(i32, i32, i32) -> ()",
        ),
        (
            '(import "gpu" "table" (table 1 funcref))',
            "imports gpu.table, but GPU functions may import only",
        ),
    ],
)
def test_foreign_import_fed_back_to_model(
    context: GpuContext,
    db_path: Path,
    fake_server: FakeLlmServer,
    extra_import: str,
    message: str,
) -> None:
    importing = with_import(double_module(), extra_import)
    fake_server.push(fenced(importing), fenced(double_module()), DOUBLE_TESTS)
    config = make_config(db_path, fake_server.url)

    with Qt45(config, reporter=Reporter()) as lib:
        result = lib.call_array("gpu", "gpu_double_f32", "doubles", [1, 2, 3])

    retry = fake_server.requests[1]["messages"][-1]["content"]
    assert message in retry
    assert result.value.tolist() == [2, 4, 6]
    stored = snapshot(db_path)["functions"]
    assert len(stored) == 1
    assert not any(extra_import in str(column) for column in stored[0])


def test_foreign_import_in_library_rejected(context: GpuContext, config: Config) -> None:
    # A shared library file can carry a GPU module that imports WASI; loading
    # it fails before any of its code runs.
    wat = with_import(double_module(), WASI_IMPORT)
    store_array(config, "gpu_wasi", Tier.GPU, wat)
    before = snapshot(config.db_path)
    model = ListModel([], when_empty=AssertionError("no model call expected"))

    with Qt45(config, model=model) as lib:
        with pytest.raises(CompileError) as caught:
            lib.call_array("gpu", "gpu_wasi", "doubles", [1.0])
        after = snapshot(config.db_path)
        assert_host_survives(lib)

    assert "GPU functions may import only" in str(caught.value)
    assert after == before


def test_shader_out_of_bounds_access_is_contained(lib: Qt45, config: Config) -> None:
    # qt45 does not check indexes inside a shader. Indexing past the buffer's
    # end must neither fault nor crash the process; wgpu and the driver see to it.
    wgsl = (
        r"@group(0) @binding(0) var<storage, read_write> data: array<f32>;\0a"
        r"@compute @workgroup_size(1)\0a"
        r"fn main() {\0a  data[1000000u] = 5.0;\0a  data[0] = data[2000000u] + 1.0;\0a}\0a"
    )
    wat = double_module(shader=wgsl).replace("gpu_double_f32", "gpu_oob")
    store_array(config, "gpu_oob", Tier.GPU, wat)

    result = lib.call_array("gpu", "gpu_oob", "writes out of bounds", [1.0, 2.0, 3.0, 4.0])

    assert result.value.shape == (4,)
    assert np.isfinite(result.value).all()
    assert_host_survives(lib)


@pytest.fixture
def slow_config(db_path: Path) -> Config:
    config = make_config(db_path, limits=Limits(gpu_timeout_s=0.1))
    store_array(config, "gpu_double_f32", Tier.GPU, double_module())
    store_array(config, "gpu_spin", Tier.GPU, GPU_SPIN)
    return config


def test_long_shader_stopped_by_gpu_timeout(context: GpuContext, slow_config: Config) -> None:
    # About one second of lavapipe work at any core count; on a GPU, 10^8
    # iterations per invocation take well over the 0.1 s limit.
    workgroups = 400 * (os.cpu_count() or 1)
    spin = [float(workgroups), 1e8]
    with Qt45(slow_config, model=ListModel([])) as lib:
        # Zero workgroups: compiles the pipeline and runs nothing.
        assert lib.call_array("gpu", "gpu_spin", "spins", [0.0, 0.0]).value.tolist() == [0, 0]
        first_context = lib.gpu_context()
        before = snapshot(slow_config.db_path)

        with pytest.raises(TrapError) as stopped:
            lib.call_array("gpu", "gpu_spin", "spins", spin)
        with pytest.raises(GpuBusy) as busy:
            lib.call_array("gpu", "gpu_double_f32", "doubles", [1, 2, 3])
        after_failures = snapshot(slow_config.db_path)
    with pytest.raises(GpuBusy):
        GpuCall(first_context, "gpu_double_f32", [], Limits()).start()
    ended = first_context.idle.wait(120)
    # A fresh device's first dispatch takes longer than 0.1 s on lavapipe, so
    # the call after recovery runs under the default limits.
    with Qt45(replace(slow_config, limits=Limits()), model=ListModel([])) as lib:
        after = lib.call_array("gpu", "gpu_double_f32", "doubles", [1, 2, 3])
        second_context = lib.gpu_context()

    assert stopped.value.cause == "time limit exceeded"
    assert str(stopped.value).startswith(
        "'gpu_spin' stopped: its GPU work ran longer than 0.1 s (the GPU time limit); "
        "raise it with --gpu-timeout or QT45_GPU_TIMEOUT. A running shader cannot be "
        "interrupted"
    )
    assert first_context.abandoned_by == "gpu_spin"
    assert str(busy.value).startswith(
        "the GPU still runs the shader of 'gpu_spin', which was stopped at its time limit"
    )
    assert after_failures == before
    assert ended
    assert after.value.tolist() == [2, 4, 6]
    assert second_context is not first_context
    assert second_context.usable
