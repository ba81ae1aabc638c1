"""GpuContext: WGSL compute shaders through wgpu, and the host functions GPU-tier modules import.

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
call ends. ``wgpu`` is imported only when the first GPU context opens, so
``import qt45`` does not load it.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import wasmtime

from .arrays import memory_bytes, run_array
from .config import Limits, how_to_raise
from .datasegments import DataSegment, read_c_string
from .errors import GpuBusy, GpuUnavailable, ShaderError, TrapError
from .gpuwait import GpuWork
from .runtime import GPU_IMPORTS, WasmRuntime, check_imports

log = logging.getLogger(__name__)

MAX_BUFFERS_PER_CALL = 64
MAX_SHADER_BYTES = 1 << 20
"""A shader read from linear memory (not from a data segment) stops here at the latest."""
PIPELINE_CACHE_SIZE = 32
SOFTWARE_ADAPTER_NAMES = ("llvmpipe", "lavapipe", "swiftshader", "basic render")
ADAPTER_KINDS = {
    "DiscreteGPU": "discrete GPU",
    "IntegratedGPU": "integrated GPU",
    "VirtualGPU": "virtual GPU",
    "CPU": "CPU",
}
NO_ADAPTER_FIX = (
    "On Linux without a GPU, install Mesa's software Vulkan driver "
    "(Debian/Ubuntu: apt-get install mesa-vulkan-drivers); a real GPU needs only its "
    "Vulkan, Metal or DX12 driver"
)


@dataclass(frozen=True)
class AdapterInfo:
    """The adapter a GPU context runs on."""

    name: str
    adapter_type: str
    """wgpu's adapter type: ``DiscreteGPU``, ``IntegratedGPU``, ``VirtualGPU``, ``CPU`` or ``Unknown``."""
    backend: str

    @property
    def software(self) -> bool:
        """True for a CPU adapter such as Mesa's llvmpipe: no GPU does the work."""
        lowered = self.name.lower()
        return self.adapter_type == "CPU" or any(word in lowered for word in SOFTWARE_ADAPTER_NAMES)

    def describe(self) -> str:
        if self.software:
            kind = "software adapter on the CPU (no GPU in use)"
        else:
            kind = ADAPTER_KINDS.get(self.adapter_type, "adapter of unknown kind")
        return f"{self.name} — {kind}, {self.backend} backend"


class GpuContext:
    """A wgpu device, its limits, and compiled pipelines cached by shader text."""

    def __init__(self, device: Any, adapter: AdapterInfo) -> None:
        import wgpu

        self._wgpu = wgpu
        self.device = device
        self.adapter = adapter
        limits = device.limits
        self.max_buffer_bytes = int(
            min(limits["max-buffer-size"], limits["max-storage-buffer-binding-size"])
        )
        self.max_workgroups = int(limits["max-compute-workgroups-per-dimension"])
        self._pipelines: OrderedDict[str, Any] = OrderedDict()
        self.lock = threading.Lock()
        self.abandoned_by: str | None = None
        """The function whose GPU work outlived its time limit; None while the context is usable."""
        self.idle = threading.Event()
        """Set while no submitted work runs; an abandoned context sets it when its work ends."""
        self.idle.set()
        self._fence: Any = None
        self._orphans: list[Any] = []

    @property
    def usable(self) -> bool:
        """False once work that overran a time limit made the context unusable."""
        return self.abandoned_by is None

    def abandon(self, function: str) -> None:
        """Mark the context unusable because work of ``function`` still runs on it."""
        self.abandoned_by = function

    def retain(self, buffers: list[Any]) -> None:
        """Keep ``buffers`` of an abandoned context until the context is dropped.

        Destroying them now could block: a wgpu call on a device whose work
        runs can wait until that work ends.
        """
        self._orphans.extend(buffers)

    @classmethod
    def open(cls) -> GpuContext:
        """Open the preferred adapter (a real GPU before a software one); raises GpuUnavailable."""
        try:
            import wgpu
        except ImportError as exc:
            raise GpuUnavailable(
                f"the GPU tier needs the wgpu package, which failed to import ({exc}); "
                "install it with pip install wgpu"
            ) from exc
        try:
            with _native_stderr_to_log():
                adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        except RuntimeError as exc:
            log.info("wgpu found no adapter: %s", exc)
            reason = str(exc).split("Caused by:")[-1].split(";")[0]
            raise GpuUnavailable(
                f"no GPU adapter is available ({' '.join(reason.split())}). {NO_ADAPTER_FIX}"
            ) from exc
        if adapter is None:
            raise GpuUnavailable(f"no GPU adapter is available. {NO_ADAPTER_FIX}")
        raised_limits = ("max-buffer-size", "max-storage-buffer-binding-size")
        device = adapter.request_device_sync(
            required_limits={key: adapter.limits[key] for key in raised_limits}
        )
        info = adapter.info
        name = info.get("device") or info.get("description") or "unnamed adapter"
        adapter_info = AdapterInfo(
            str(name), str(info.get("adapter_type", "Unknown")), str(info.get("backend_type", "?"))
        )
        return cls(device, adapter_info)

    def pipeline(self, shader: str) -> Any:
        """Return the compute pipeline of ``shader`` (entry point ``main``); raises ShaderError."""
        cached = self._pipelines.get(shader)
        if cached is not None:
            self._pipelines.move_to_end(shader)
            return cached
        try:
            module = self.device.create_shader_module(code=shader)
            pipeline = self.device.create_compute_pipeline(
                layout="auto", compute={"module": module, "entry_point": "main"}
            )
        except self._wgpu.GPUError as exc:
            raise ShaderError(
                f"the WGSL shader was rejected by wgpu: {_wgpu_message(exc)}"
            ) from exc
        self._pipelines[shader] = pipeline
        if len(self._pipelines) > PIPELINE_CACHE_SIZE:
            self._pipelines.popitem(last=False)
        return pipeline

    def create_buffer(self, size: int) -> Any:
        usage = self._wgpu.BufferUsage
        return self.device.create_buffer(
            size=size, usage=usage.STORAGE | usage.COPY_DST | usage.COPY_SRC
        )

    def dispatch(self, pipeline: Any, buffer: Any, workgroups: int, timeout_s: float) -> bool:
        """Run ``workgroups`` workgroups with ``buffer`` at group 0, binding 0, and wait for them.

        Returns False when the work still runs after ``timeout_s`` seconds;
        the caller must then ``abandon`` the context. Raises ShaderError when
        the shader does not fit the binding.
        """
        if self._fence is None:
            usage = self._wgpu.BufferUsage
            self._fence = self.device.create_buffer(size=4, usage=usage.MAP_READ | usage.COPY_DST)
        work = GpuWork(
            lambda: self._submit_and_wait(pipeline, buffer, workgroups), self.idle, "dispatch"
        )
        try:
            return work.wait(timeout_s)
        except self._wgpu.GPUError as exc:
            raise ShaderError(
                "the shader does not fit the GPU tier's binding: it must declare exactly "
                "@group(0) @binding(0) var<storage, read_write> data: array<f32>; and use it "
                f"(wgpu: {_wgpu_message(exc)})"
            ) from exc

    def _submit_and_wait(self, pipeline: Any, buffer: Any, workgroups: int) -> None:
        """Submit the dispatch and a 4-byte copy to the fence, then wait until the fence maps.

        Runs in a GpuWork thread. The copy is ordered after the dispatch, so
        the map completes only when the dispatch has ended.
        """
        bind_group = self.device.create_bind_group(
            layout=pipeline.get_bind_group_layout(0),
            entries=[
                {"binding": 0, "resource": {"buffer": buffer, "offset": 0, "size": buffer.size}}
            ],
        )
        encoder = self.device.create_command_encoder()
        compute = encoder.begin_compute_pass()
        compute.set_pipeline(pipeline)
        compute.set_bind_group(0, bind_group)
        compute.dispatch_workgroups(workgroups)
        compute.end()
        encoder.copy_buffer_to_buffer(buffer, 0, self._fence, 0, 4)
        self.device.queue.submit([encoder.finish()])
        self._fence.map_async(self._wgpu.MapMode.READ).sync_wait()
        self._fence.unmap()


@contextmanager
def _native_stderr_to_log() -> Iterator[None]:
    """Send what native drivers write to file descriptor 2 to the log instead of the terminal.

    While adapters are enumerated, Mesa prints lines such as "error:
    XDG_RUNTIME_DIR is invalid" on machines without a display session. They
    do not affect compute work, but on the terminal they would read like a
    qt45 error.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace").strip()
            if text:
                log.info("GPU driver output while opening the adapter: %s", text)


def _wgpu_message(exc: BaseException) -> str:
    lines = [line.rstrip() for line in str(exc).splitlines() if line.strip()]
    return "\n".join(lines)


_shared: GpuContext | None = None
_shared_lock = threading.Lock()


def shared_context(wait_s: float = 0.0) -> GpuContext:
    """Return the process-wide GPU context, opening it on first use; raises GpuUnavailable.

    A context abandoned because its work outlived a time limit is replaced by
    a new one once that work ends. Opening a device while the old one is busy
    can block (it does with lavapipe), so this waits up to ``wait_s`` seconds
    for the work to end and then raises GpuBusy.
    """
    global _shared
    with _shared_lock:
        if _shared is not None and not _shared.usable:
            if not _shared.idle.wait(wait_s):
                raise _busy_error(_shared, wait_s)
            log.info("replacing the GPU context abandoned by %r", _shared.abandoned_by)
            _shared = None
        if _shared is None:
            _shared = GpuContext.open()
        return _shared


def _busy_error(context: GpuContext, waited_s: float) -> GpuBusy:
    return GpuBusy(
        f"the GPU still runs the shader of {context.abandoned_by!r}, which was stopped at its "
        "time limit; a running shader cannot be interrupted, and no new GPU work can start "
        f"until it ends (waited {waited_s:g} s). Try again later; exiting qt45 also ends it"
    )


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
            raise _busy_error(self.context, 0)
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
