"""The ``gpu`` host functions that GPU-tier modules import, and one GPU call.

A GPU-tier module imports, from namespace ``gpu``:

- ``alloc(size i32) -> i32``: a storage buffer of ``size`` bytes; returns its handle.
- ``write_buffer(handle, ptr, len)``: copy ``len`` bytes of linear memory from ``ptr``.
- ``dispatch_shader(shader_ptr, shader_len, handle, workgroups)``: compile the WGSL at
  ``shader_ptr`` and run its entry point ``main`` on ``workgroups`` workgroups, with the
  buffer bound as ``@group(0) @binding(0) var<storage, read_write> data: array<f32>``.
- ``read_buffer(handle, ptr, len)``: copy ``len`` bytes of the buffer back to ``ptr``.

Every pointer and length is checked against the module's memory and every
handle against the buffers of the current call; a violation raises TrapError.
One call may allocate at most ``Limits.gpu_buffer_bytes`` of buffers and run
at most ``Limits.gpu_workgroups`` workgroups, and its GPU work must end
within ``Limits.gpu_timeout_s`` of the call's start. Buffers live until the
call ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import wasmtime

from .arrays import memory_bytes, run_array
from .config import Limits, how_to_raise
from .datasegments import DataSegment, read_c_string
from .errors import ShaderError, TrapError
from .gpu import GpuContext, busy_error
from .runtime import GPU_IMPORTS, WasmRuntime, check_imports

log = logging.getLogger(__name__)

MAX_BUFFERS_PER_CALL = 64
MAX_SHADER_BYTES = 1 << 20
"""A shader read from linear memory (not from a data segment) stops here at the latest."""


def check_gpu_imports(module: wasmtime.Module) -> None:
    """Raise CompileError unless every import is one of the ``gpu`` host functions, with its type."""
    check_imports(module, GPU_IMPORTS, "GPU")


@dataclass
class GpuCall:
    """The host functions of one call: its buffers, and the shaders it dispatched."""

    context: GpuContext
    name: str
    segments: list[DataSegment]
    limits: Limits
    """Buffer bytes, workgroups and GPU time the call may use."""
    buffers: list[Any] = field(default_factory=list)
    shaders: list[str] = field(default_factory=list)
    allocated_bytes: int = 0
    workgroups_run: int = 0
    destroyed: int = 0
    """Buffers destroyed so far by ``release``."""
    deadline: float = float("inf")
    """``time.monotonic()`` value by which the call's GPU work must end; set by ``start``."""

    def start(self) -> None:
        """Start the call's GPU time limit now; raises GpuBusy on an abandoned context."""
        if not self.context.usable:
            raise busy_error(self.context, 0)
        self.deadline = time.monotonic() + self.limits.gpu_timeout_s

    def define(self, linker: wasmtime.Linker) -> None:
        """Define the four ``gpu`` imports in ``linker``, bound to this call."""
        handlers: dict[str, Callable[..., int | None]] = {
            "alloc": self.alloc,
            "write_buffer": self.write_buffer,
            "dispatch_shader": self.dispatch_shader,
            "read_buffer": self.read_buffer,
        }
        for host_import in GPU_IMPORTS:
            func_type = wasmtime.FuncType(
                [wasmtime.ValType.i32() for _ in host_import.params],
                [wasmtime.ValType.i32() for _ in host_import.results],
            )
            handler = handlers[host_import.name]
            linker.define_func("gpu", host_import.name, func_type, handler, access_caller=True)

    def release(self) -> None:
        """Destroy every buffer of this call, or leave them to the context if it was abandoned."""
        if self.context.usable:
            for buffer in self.buffers:
                buffer.destroy()
                self.destroyed += 1
        else:
            self.context.retain(self.buffers)
        self.buffers.clear()
        self.allocated_bytes = 0

    # -- host functions ------------------------------------------------

    def alloc(self, caller: wasmtime.Caller, size: int) -> int:
        if size < 0:
            self._trap("alloc", f"size {size} is negative")
        if size > self.context.max_buffer_bytes:
            self._trap(
                "alloc",
                f"{size:,} bytes exceed this adapter's maximum storage buffer size of "
                f"{self.context.max_buffer_bytes:,} bytes",
            )
        if len(self.buffers) >= MAX_BUFFERS_PER_CALL:
            self._trap("alloc", f"one call may allocate at most {MAX_BUFFERS_PER_CALL} buffers")
        budget = self.limits.gpu_buffer_bytes
        if self.allocated_bytes + size > budget:
            self._trap(
                "alloc",
                f"{self.allocated_bytes + size:,} bytes of buffers in one call exceed the GPU "
                f"buffer limit of {budget:,} bytes; {how_to_raise('gpu_buffer_bytes')}",
            )
        # WebGPU copies move whole 4-byte words and a binding cannot be empty.
        rounded = max(4, -(-size // 4) * 4)
        with self.context.lock:
            self.buffers.append(self.context.create_buffer(rounded))
        self.allocated_bytes += size
        return len(self.buffers)

    def write_buffer(self, caller: wasmtime.Caller, handle: int, ptr: int, length: int) -> None:
        buffer = self._buffer("write_buffer", handle)
        memory = self._memory_span(caller, "write_buffer", ptr, length)
        self._check_copy("write_buffer", buffer, length)
        if length:
            with self.context.lock:
                self.context.device.queue.write_buffer(buffer, 0, memory[ptr : ptr + length])

    def read_buffer(self, caller: wasmtime.Caller, handle: int, ptr: int, length: int) -> None:
        buffer = self._buffer("read_buffer", handle)
        memory = self._memory_span(caller, "read_buffer", ptr, length)
        self._check_copy("read_buffer", buffer, length)
        if length:
            with self.context.lock:
                data = self.context.device.queue.read_buffer(buffer, 0, length)
            memory[ptr : ptr + length] = np.frombuffer(data, dtype=np.uint8)

    def dispatch_shader(
        self,
        caller: wasmtime.Caller,
        shader_ptr: int,
        shader_len: int,
        handle: int,
        workgroups: int,
    ) -> None:
        buffer = self._buffer("dispatch_shader", handle)
        if workgroups < 0 or workgroups > self.context.max_workgroups:
            self._trap(
                "dispatch_shader",
                f"{workgroups} workgroups is outside this adapter's range of 0 to "
                f"{self.context.max_workgroups} per dispatch",
            )
        total = self.workgroups_run + workgroups
        if total > self.limits.gpu_workgroups:
            self._trap(
                "dispatch_shader",
                f"{total:,} workgroups in one call exceed the limit of "
                f"{self.limits.gpu_workgroups:,}; {how_to_raise('gpu_workgroups')}",
            )
        shader = self.read_shader(caller, shader_ptr, shader_len)
        with self.context.lock:
            pipeline = self.context.pipeline(shader)
            if workgroups:
                self._run_dispatch(pipeline, buffer, workgroups)
        self.workgroups_run = total
        self.shaders.append(shader)

    def _run_dispatch(self, pipeline: Any, buffer: Any, workgroups: int) -> None:
        """Dispatch and wait until the call's deadline; past it, abandon the context and trap."""
        remaining = self.deadline - time.monotonic()
        if remaining > 0 and self.context.dispatch(pipeline, buffer, workgroups, remaining):
            return
        if remaining > 0:
            self.context.abandon(self.name)
            aftermath = (
                " A running shader cannot be interrupted, so it runs on to its end, and the "
                "next GPU call waits for it and then opens a new GPU context"
            )
        else:
            aftermath = " The shader was not started"
        timeout = self.limits.gpu_timeout_s
        raise TrapError(
            f"{self.name!r} stopped: its GPU work ran longer than {timeout:g} s (the GPU time "
            f"limit); {how_to_raise('gpu_timeout_s')}.{aftermath}",
            function=self.name,
            cause="time limit exceeded",
        )

    # -- checks ----------------------------------------------------------

    def read_shader(self, caller: wasmtime.Caller, shader_ptr: int, shader_len: int) -> str:
        """Return the WGSL at ``shader_ptr``, whatever the value of ``shader_len``.

        The text runs from ``shader_ptr`` to the first NUL byte or the end of
        the data segment that contains it, as the module declares it. A
        pointer outside every data segment is read from linear memory up to
        the first NUL byte.
        """
        address = shader_ptr & 0xFFFFFFFF
        raw = read_c_string(self.segments, address)
        if raw is None:
            memory = self._memory(caller)
            if address >= len(memory):
                self._trap(
                    "dispatch_shader",
                    f"shader_ptr {address} is outside the module's memory ({len(memory)} bytes)",
                )
            window = bytes(memory[address : min(len(memory), address + MAX_SHADER_BYTES)])
            end = window.find(b"\x00")
            raw = window if end == -1 else window[:end]
        if shader_len != len(raw):
            log.debug(
                "%s passed shader_len %d; the shader is %d bytes", self.name, shader_len, len(raw)
            )
        try:
            shader = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ShaderError(f"the WGSL at offset {address} is not valid UTF-8 ({exc})") from exc
        if not shader.strip():
            raise ShaderError(
                f"there is no WGSL text at shader_ptr {address}; pass the offset of the data "
                "segment that holds the shader"
            )
        return shader

    def _buffer(self, function: str, handle: int) -> Any:
        if not 1 <= handle <= len(self.buffers):
            self._trap(
                function,
                f"handle {handle} is not a buffer of this call "
                f"({len(self.buffers)} allocated; handles come from gpu.alloc)",
            )
        return self.buffers[handle - 1]

    def _memory(self, caller: wasmtime.Caller) -> np.ndarray:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            self._trap("memory", 'the module does not export its memory as "memory"')
        return memory_bytes(caller, memory)

    def _memory_span(
        self, caller: wasmtime.Caller, function: str, ptr: int, length: int
    ) -> np.ndarray:
        memory = self._memory(caller)
        if length < 0:
            self._trap(function, f"len {length} is negative")
        if ptr < 0 or ptr + length > len(memory):
            self._trap(
                function,
                f"ptr {ptr} + len {length} is outside the module's memory ({len(memory)} bytes)",
            )
        return memory

    def _check_copy(self, function: str, buffer: Any, length: int) -> None:
        if length % 4:
            self._trap(function, f"len {length} is not a multiple of 4 bytes (whole f32 values)")
        if length > buffer.size:
            self._trap(function, f"len {length} exceeds the buffer's size of {buffer.size} bytes")

    def _trap(self, function: str, detail: str) -> NoReturn:
        raise TrapError(
            f"{self.name!r} trapped: gpu.{function}: {detail}",
            function=self.name,
            cause=f"gpu.{function}: {detail}",
        )


def run_gpu(
    runtime: WasmRuntime, call: GpuCall, module: wasmtime.Module, inputs: list[np.ndarray]
) -> np.ndarray:
    """Call a GPU-tier function once with ``call``'s host functions; returns the result.

    The call's buffers are destroyed before this returns, also after a trap,
    unless the call abandoned the context (see ``GpuCall.release``).
    """
    linker = wasmtime.Linker(runtime.engine)
    call.define(linker)
    call.start()
    try:
        return run_array(runtime, module, call.name, inputs, linker)
    finally:
        call.release()
