"""GpuContext: the wgpu device that runs WGSL compute shaders for the GPU tier.

The context opens on the first GPU request and prints the adapter's name and
kind; a software adapter such as llvmpipe is named as one. ``wgpu`` is
imported only when the first context opens, so ``import qt45`` does not load
it. The host functions that GPU-tier modules import are in ``gpuhost``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import GpuBusy, GpuUnavailable, ShaderError
from .gpuwait import GpuWork

log = logging.getLogger(__name__)

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
                raise busy_error(_shared, wait_s)
            log.info("replacing the GPU context abandoned by %r", _shared.abandoned_by)
            _shared = None
        if _shared is None:
            _shared = GpuContext.open()
        return _shared


def busy_error(context: GpuContext, waited_s: float) -> GpuBusy:
    """Return the error for a context whose last shader was abandoned and may still run."""
    return GpuBusy(
        f"the GPU still runs the shader of {context.abandoned_by!r}, which was stopped at its "
        "time limit; a running shader cannot be interrupted, and no new GPU work can start "
        f"until it ends (waited {waited_s:g} s). Try again later; exiting qt45 also ends it"
    )
