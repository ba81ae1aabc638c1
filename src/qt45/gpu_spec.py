"""The GPU tier in the generation loop: WAT modules that dispatch WGSL compute shaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .array_spec import ArraySpec
from .arrays import check_array_exports
from .datasegments import DataSegment, data_segments
from .errors import CompileError, ShaderError, TrapError
from .gpu import GpuContext
from .gpuhost import GpuCall, check_gpu_imports, run_gpu
from .request import ArrayRequest
from .runtime import CompiledModule, WasmRuntime
from .store import FunctionRecord
from .synth import Built

TRIAL_ELEMENTS = 5
"""Elements per input of the trial call that compiles the shader while a candidate is built."""


@dataclass
class GpuModule:
    """A compiled GPU-tier module with its data segments and the shader it dispatched."""

    compiled: CompiledModule
    segments: list[DataSegment]
    shader: str


def check_gpu_module(compiled: CompiledModule, name: str) -> list[DataSegment]:
    """Check the GPU contract (imports, exports); returns the module's data segments."""
    check_gpu_imports(compiled.module)
    check_array_exports(compiled.module, name)
    try:
        return data_segments(compiled.wasm)
    except ValueError as exc:
        raise CompileError(f"the module's data section cannot be read: {exc}") from exc


class GpuSpec(ArraySpec):
    """Prompts, checks and tests of the GPU tier.

    A candidate is built by compiling it and calling it once on a small trial
    input, so that WGSL errors reach the model as compile errors, and the
    dispatched shader is known before the function is stored.
    """

    label = "gpu"
    prompt_prefix = "gpu"

    def __init__(
        self, request: ArrayRequest, runtime: WasmRuntime, gpu: Callable[[], GpuContext]
    ) -> None:
        super().__init__(request, runtime)
        self.gpu = gpu
        """Returns the GPU context for each call; a context abandoned after a timeout is replaced."""

    def build(self, wat: str) -> Built:
        compiled = self.runtime.compile(wat)
        segments = check_gpu_module(compiled, self.array.name)
        trial = [
            np.arange(1, TRIAL_ELEMENTS + 1, dtype=np.float32) * (index + 1)
            for index in range(self.input_count)
        ]
        call = self._new_call(segments)
        try:
            run_gpu(self.runtime, call, compiled.module, trial)
        except ShaderError:
            raise
        except TrapError as exc:
            raise CompileError(
                f"the module compiles, but a trial call on {TRIAL_ELEMENTS} elements failed: {exc}"
            ) from exc
        if not call.shaders:
            raise CompileError(
                "the module never called gpu.dispatch_shader; a GPU function must do its work "
                "in a WGSL compute shader"
            )
        return Built(wat=wat, artifact=GpuModule(compiled, segments, call.shaders[-1]))

    def call_built(self, built: Built, inputs: list[np.ndarray]) -> np.ndarray:
        module: GpuModule = built.artifact
        return run_gpu(
            self.runtime, self._new_call(module.segments), module.compiled.module, inputs
        )

    def _new_call(self, segments: list[DataSegment]) -> GpuCall:
        return GpuCall(self.gpu(), self.array.name, segments, self.runtime.limits)

    def make_record(self, built: Built, verified: bool) -> FunctionRecord:
        module: GpuModule = built.artifact
        return self.new_record(
            self.runtime, module.compiled, built.wat, verified, shader=module.shader
        )
