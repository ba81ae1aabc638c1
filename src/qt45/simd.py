"""The SIMD tier: f32 arrays in linear memory, processed with v128 instructions."""

from __future__ import annotations

import numpy as np

from .array_spec import ArraySpec
from .arrays import check_array_exports, run_array
from .runtime import CompiledModule, check_imports
from .store import FunctionRecord
from .synth import Built


def check_simd_module(compiled: CompiledModule, name: str) -> None:
    """Check the SIMD contract: no imports, ``memory`` and ``name: (i32, i32) -> i32`` exported."""
    check_imports(compiled.module, (), "SIMD")
    check_array_exports(compiled.module, name)


class SimdSpec(ArraySpec):
    """Prompts, checks and tests of the SIMD tier."""

    label = "simd"
    prompt_prefix = "simd"

    def build(self, wat: str) -> Built:
        compiled = self.runtime.compile(wat)
        check_simd_module(compiled, self.array.name)
        return Built(wat=wat, artifact=compiled)

    def call_built(self, built: Built, inputs: list[np.ndarray]) -> np.ndarray:
        compiled: CompiledModule = built.artifact
        return run_array(self.runtime, compiled.module, self.array.name, inputs)

    def make_record(self, built: Built, verified: bool) -> FunctionRecord:
        compiled: CompiledModule = built.artifact
        return self.new_record(self.runtime, compiled, built.wat, verified)
