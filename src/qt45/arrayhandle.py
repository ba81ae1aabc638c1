"""ArrayFunction: a stored SIMD function bound to one instance, with arrays in its memory.

``Qt45.call_array`` gives every call a fresh instance and copies inputs in
and the result out. For repeated calls on large arrays an ArrayFunction
keeps one instance and offers three levels of copying:

- ``f(a, b)`` copies the inputs into linear memory once and the result out once;
- ``f(a, b, out=c)`` writes the result into an array the caller owns;
- ``f.inputs(n)`` returns numpy views of the input slots inside linear memory,
  and ``f.run(n)`` returns a view of the result, so chained calls copy nothing.

Views stay valid while the memory does not move: wasmtime reserves address
space for 32-bit memories up front, so growing keeps the base address, and
``inputs`` re-creates the views after it grows the memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import wasmtime

from .arrays import ARRAY_FUNC_TYPE, F32, _ensure_memory, memory_bytes, to_f32_arrays
from .errors import ArgumentError, TrapError
from .fastcall import FAST_PATH_AVAILABLE, RawCaller
from .runtime import WasmRuntime
from .store import FunctionRecord, FunctionStore


class ArrayFunction:
    """Call a stored SIMD function many times without a new instance per call.

    The instance keeps its linear memory between calls, so the function must
    not rely on memory being zeroed at each call (a requirement the SIMD
    prompt already states: results are written before they are read).
    """

    def __init__(
        self,
        record: FunctionRecord,
        module: wasmtime.Module,
        input_count: int,
        runtime: WasmRuntime,
        store: FunctionStore,
    ) -> None:
        self.record = record
        self.input_count = input_count
        self._module = module
        self._runtime = runtime
        self._library = store
        self._store = runtime.new_store()
        self._instance = runtime.instantiate(self._store, module, (), record.name)
        exports = self._instance.exports(self._store)
        memory, func = exports["memory"], exports[record.name]
        assert isinstance(memory, wasmtime.Memory) and isinstance(func, wasmtime.Func)
        self._memory = memory
        self._func = func
        self._raw = RawCaller(self._store, func, ARRAY_FUNC_TYPE) if FAST_PATH_AVAILABLE else None
        self._views: list[np.ndarray] = []
        self._length = -1

    @property
    def name(self) -> str:
        return self.record.name

    def inputs(self, length: int) -> list[np.ndarray]:
        """Return float32 views of the input slots for arrays of ``length`` elements.

        Fill them in place, then call ``run(length)``. Raises TrapError when
        the memory limit cannot hold the inputs and one result.
        """
        if length < 0:
            raise ArgumentError(f"array length must be zero or more, got {length}")
        if length != self._length:
            array_bytes = 4 * length
            needed = array_bytes * (self.input_count + 1)
            _ensure_memory(
                self._store,
                self._memory,
                self.record.name,
                needed,
                self._runtime.limits.memory_bytes,
            )
            whole = memory_bytes(self._store, self._memory)
            self._views = [
                whole[index * array_bytes : (index + 1) * array_bytes].view(F32)
                for index in range(self.input_count)
            ]
            self._length = length
        return self._views

    def run(self, length: int) -> np.ndarray:
        """Call the function on the arrays already in its input slots; returns a view of the result.

        The view lives in linear memory and is overwritten by the next call;
        copy it to keep it. Raises TrapError for traps, limits and a result
        offset outside memory.
        """
        if length != self._length:
            self.inputs(length)
        with self._runtime.limited(self._store, self.record.name):
            if self._raw is not None:
                returned = self._raw((0, length))[0]
            else:
                returned = self._func(self._store, 0, length)
        if self.record.id is not None:
            self._library.record_call(self.record.id)
        assert isinstance(returned, int)
        offset = returned & 0xFFFFFFFF
        array_bytes = 4 * length
        size = self._memory.data_len(self._store)
        if offset + array_bytes > size:
            raise TrapError(
                f"{self.record.name!r} returned offset {offset}, but {length} f32 from there "
                f"would end at byte {offset + array_bytes}, past the end of its memory "
                f"({size} bytes)",
                function=self.record.name,
                cause="result offset outside memory",
            )
        if length == 0:
            return np.zeros(0, dtype=F32)
        return memory_bytes(self._store, self._memory)[offset : offset + array_bytes].view(F32)

    def __call__(self, *inputs: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Copy ``inputs`` in, call, and return the result in ``out`` or a new float32 array."""
        if len(inputs) != self.input_count:
            raise ArgumentError(
                f"{self.record.name!r} takes {self.input_count} input array(s), got {len(inputs)}"
            )
        arrays = to_f32_arrays(inputs)
        length = len(arrays[0])
        for slot, array in zip(self.inputs(length), arrays, strict=True):
            np.copyto(slot, array)
        result = self.run(length)
        if out is None:
            return result.copy()
        if out.shape != (length,) or out.dtype != F32:
            raise ArgumentError(f"out must be a float32 array of shape ({length},)")
        np.copyto(out, result)
        return out

    def __repr__(self) -> str:
        return f"<ArrayFunction {self.record.name} {self.record.signature} simd>"
