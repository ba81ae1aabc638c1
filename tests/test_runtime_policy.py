"""Import policy of each tier and the settings of the execution limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from qt45 import CompileError, Limits, Qt45Error, WasmRuntime
from qt45.cli import build_parser, config_from_args
from qt45.runtime import GPU_IMPORTS, check_imports

GPU_MODULE = """(module
  (import "gpu" "alloc" (func $alloc (param i32) (result i32)))
  (import "gpu" "write_buffer" (func $write (param i32 i32 i32)))
  (import "gpu" "dispatch_shader" (func $dispatch (param i32 i32 i32 i32)))
  (import "gpu" "read_buffer" (func $read (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "run") (param i32 i32) (result i32) i32.const 0))"""


@pytest.fixture
def runtime(tmp_path: Path) -> WasmRuntime:
    return WasmRuntime(Limits(), tmp_path / "module.key")


@pytest.mark.parametrize(
    "imports, phrase",
    [
        ('(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
         "imports wasi_snapshot_preview1.fd_write, but scalar functions may import nothing"),
        ('(import "env" "memory" (memory 1))', "imports env.memory, but scalar"),
        ('(import "gpu" "alloc" (func (param i32) (result i32)))', "imports gpu.alloc, but scalar"),
    ],
)  # fmt: skip
def test_scalar_rejects_every_import(runtime: WasmRuntime, imports: str, phrase: str) -> None:
    module = runtime.compile(f"(module {imports})").module

    with pytest.raises(CompileError) as caught:
        check_imports(module, (), "scalar")

    assert phrase in str(caught.value)
    assert "remove every import" in str(caught.value)


def test_gpu_accepts_its_four_imports(runtime: WasmRuntime) -> None:
    check_imports(runtime.compile(GPU_MODULE).module, GPU_IMPORTS, "GPU")


def test_gpu_accepts_subset(runtime: WasmRuntime) -> None:
    module = runtime.compile(
        '(module (import "gpu" "alloc" (func (param i32) (result i32))))'
    ).module

    check_imports(module, GPU_IMPORTS, "GPU")


@pytest.mark.parametrize(
    "imports, phrase",
    [
        ('(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
         "imports wasi_snapshot_preview1.fd_write, but GPU functions may import only "
         "gpu.alloc (i32) -> i32, gpu.write_buffer (i32, i32, i32) -> ()"),
        ('(import "gpu" "free" (func (param i32)))', "imports gpu.free"),
        ('(import "env" "alloc" (func (param i32) (result i32)))', "imports env.alloc"),
        ('(import "gpu" "alloc" (func (param i64) (result i32)))',
         "the import gpu.alloc has type (i64) -> i32, but it must be (i32) -> i32"),
        ('(import "gpu" "read_buffer" (func (param i32 i32 i32) (result i32)))',
         "has type (i32, i32, i32) -> i32, but it must be (i32, i32, i32) -> ()"),
        ('(import "gpu" "alloc" (memory 1))', "the import gpu.alloc is not a function"),
    ],
)  # fmt: skip
def test_gpu_rejects_others(runtime: WasmRuntime, imports: str, phrase: str) -> None:
    module = runtime.compile(f"(module {imports})").module

    with pytest.raises(CompileError) as caught:
        check_imports(module, GPU_IMPORTS, "GPU")

    assert phrase in str(caught.value)


def test_limits_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "QT45_FUEL": "1000",
        "QT45_CALL_TIMEOUT": "2.5",
        "QT45_MEMORY_MB": "8",
        "QT45_TABLE_ELEMENTS": "50",
        "QT45_INSTANCES": "2",
        "QT45_STACK_KB": "128",
        "QT45_GPU_BUFFER_MB": "32",
        "QT45_GPU_WORKGROUPS": "5000",
        "QT45_GPU_TIMEOUT": "1.5",
    }.items():
        monkeypatch.setenv(name, value)

    limits = Limits.from_env()

    assert limits == Limits(
        fuel=1000,
        call_timeout_s=2.5,
        memory_bytes=8 * 2**20,
        table_elements=50,
        instances=2,
        wasm_stack_bytes=128 * 1024,
        gpu_buffer_bytes=32 * 2**20,
        gpu_workgroups=5000,
        gpu_timeout_s=1.5,
    )


def test_limits_from_flags_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT45_CALL_TIMEOUT", "2.5")
    monkeypatch.setenv("QT45_GPU_TIMEOUT", "7")
    args = build_parser().parse_args(
        ["--fuel", "5", "--call-timeout", "0.25", "--memory-mb", "4", "--table-elements", "7",
         "--instances", "3", "--stack-kb", "64", "--gpu-buffer-mb", "16",
         "--gpu-workgroups", "900", "--gpu-timeout", "0.5"]
    )  # fmt: skip

    limits = config_from_args(args).limits

    assert limits == Limits(
        fuel=5,
        call_timeout_s=0.25,
        memory_bytes=4 * 2**20,
        table_elements=7,
        instances=3,
        wasm_stack_bytes=64 * 1024,
        gpu_buffer_bytes=16 * 2**20,
        gpu_workgroups=900,
        gpu_timeout_s=0.5,
    )


def test_nonpositive_env_limit_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT45_MEMORY_MB", "0")

    with pytest.raises(
        Qt45Error,
        match=r"--memory-mb \(QT45_MEMORY_MB, Limits.memory_bytes\) must be a positive number, got 0",
    ):
        Limits.from_env()


def test_nonpositive_gpu_flag_rejected() -> None:
    args = build_parser().parse_args(["--gpu-workgroups", "0"])

    with pytest.raises(Qt45Error, match="--gpu-workgroups must be a positive number, got 0"):
        config_from_args(args)


def test_nonpositive_gpu_limit_rejected(tmp_path: Path) -> None:
    with pytest.raises(
        Qt45Error, match=r"--gpu-timeout \(QT45_GPU_TIMEOUT, Limits.gpu_timeout_s\) must be"
    ):
        WasmRuntime(Limits(gpu_timeout_s=0), tmp_path / "module.key")


def test_nonpositive_api_limit_rejected(tmp_path: Path) -> None:
    with pytest.raises(Qt45Error, match=r"Limits.fuel\) must be a positive number, got 0"):
        WasmRuntime(Limits(fuel=0), tmp_path / "module.key")
