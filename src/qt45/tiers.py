"""ArrayTiers: loads stored SIMD and GPU functions, runs them, and builds their TierSpecs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import wasmtime

from .array_spec import ArraySpec
from .arrays import run_array
from .datasegments import DataSegment
from .errors import Qt45Error
from .gpu import GpuContext
from .gpu_spec import GpuSpec, check_gpu_module
from .gpuhost import GpuCall, run_gpu
from .request import ArrayRequest
from .runtime import CompiledModule, WasmRuntime
from .signature import Tier
from .simd import SimdSpec, check_simd_module
from .store import FunctionRecord, FunctionStore


@dataclass
class LoadedArray:
    """A stored array function ready to call."""

    name: str
    tier: Tier
    module: wasmtime.Module
    segments: list[DataSegment]


class ArrayTiers:
    """The SIMD and GPU tiers of one library; ``gpu`` opens the GPU context on first use."""

    def __init__(
        self, runtime: WasmRuntime, store: FunctionStore, gpu: Callable[[], GpuContext]
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.gpu = gpu
        self._loaded: dict[tuple[int | None, bytes], LoadedArray] = {}

    def spec(self, request: ArrayRequest) -> ArraySpec:
        """Return the TierSpec that generates ``request``'s function."""
        if request.tier == Tier.GPU:
            return GpuSpec(request, self.runtime, self.gpu)
        return SimdSpec(request, self.runtime)

    def load(self, record: FunctionRecord) -> LoadedArray:
        """Return a callable form of a stored array function, cached for this process.

        Native code that had to be rebuilt from the stored wasm is written back
        once, so later loads deserialise it.
        """
        key = (record.id, hashlib.sha256(record.wasm).digest())
        cached = self._loaded.get(key)
        if cached is not None:
            return cached
        if record.tier not in (Tier.SIMD, Tier.GPU):
            raise Qt45Error(
                f"{record.name!r} is a {record.tier} function; request it with its signature, "
                "not with arrays"
            )
        module, recompiled = self.runtime.load_module(record)
        compiled = CompiledModule(module, record.wasm)
        if record.tier == Tier.GPU:
            segments = check_gpu_module(compiled, record.name)
        else:
            check_simd_module(compiled, record.name)
            segments = []
        if recompiled and record.id is not None:
            native, tag = self.runtime.serialize(compiled)
            self.store.update_compiled(record.id, native, tag)
            record.compiled, record.compiled_tag = native, tag
        loaded = LoadedArray(record.name, record.tier, module, segments)
        self._loaded[key] = loaded
        return loaded

    def run(self, record: FunctionRecord, inputs: list[np.ndarray]) -> np.ndarray:
        """Call a stored SIMD or GPU function once on f32 inputs; returns a float32 array."""
        loaded = self.load(record)
        if loaded.tier == Tier.GPU:
            call = GpuCall(self.gpu(), loaded.name, loaded.segments, self.runtime.limits)
            return run_gpu(self.runtime, call, loaded.module, inputs)
        return run_array(self.runtime, loaded.module, loaded.name, inputs)

    def forget(self, function_id: int | None) -> None:
        """Drop cached modules of a function (after delete or replace)."""
        for key in [key for key in self._loaded if key[0] == function_id]:
            del self._loaded[key]
