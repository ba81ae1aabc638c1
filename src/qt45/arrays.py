"""The array calling convention of the SIMD and GPU tiers.

An array function takes k f32 arrays of one length N and returns one f32
array of length N. The module exports ``memory`` and a function
``name(ptr i32, len i32) -> i32``. The host writes the inputs back to back
from offset 0, so input j starts at byte ``4 * N * j``. It grows memory so that
one more array fits after the inputs, the usual place for the result. Then it
calls ``name(0, N)`` and reads N f32 from the byte offset the function returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import wasmtime

from .errors import ArgumentError, CompileError, TrapError
from .runtime import WasmRuntime, check_export_type
from .signature import F32_MAX, Signature

ARRAY_FUNC_TYPE = Signature(("i32", "i32"), ("i32",))
F32 = np.dtype("<f4")
PAGE_BYTES = 65_536


def to_f32_arrays(inputs: Sequence[Any]) -> list[np.ndarray]:
    """Convert inputs (lists or numpy arrays) to contiguous little-endian float32 arrays.

    Raises ArgumentError when there is no input, an input is not a flat array
    of numbers, a finite value exceeds the float32 range, or the lengths differ.
    """
    if len(inputs) == 0:
        raise ArgumentError("an array request needs at least one input array, e.g. [1, 2, 3, 4]")
    arrays = [_to_f32(value, position) for position, value in enumerate(inputs, start=1)]
    lengths = sorted({len(array) for array in arrays})
    if len(lengths) > 1:
        raise ArgumentError(f"all input arrays must have the same length, got lengths {lengths}")
    return arrays


def _to_f32(value: Any, position: int) -> np.ndarray:
    if isinstance(value, np.ndarray) and value.dtype == F32 and value.ndim == 1:
        return np.ascontiguousarray(value)
    try:
        wide = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"input {position} is not an array of numbers: {exc}") from exc
    if wide.ndim != 1:
        raise ArgumentError(
            f"input {position} must be a flat array of numbers, got shape {wide.shape}"
        )
    too_large = np.isfinite(wide) & (np.abs(wide) > F32_MAX)
    if too_large.any():
        index = int(np.argmax(too_large))
        raise ArgumentError(
            f"input {position}, element {index}: {float(wide[index])!r} exceeds the float32 maximum"
        )
    return wide.astype(F32)


def check_array_exports(module: wasmtime.Module, name: str) -> None:
    """Raise CompileError unless the module exports ``memory`` and ``name: (i32, i32) -> i32``."""
    exports = {item.name: item.type for item in module.exports}
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        raise CompileError(
            'the module must export its linear memory as "memory", e.g. '
            '(memory (export "memory") 1)'
        )
    check_export_type(module, name, ARRAY_FUNC_TYPE)


def call_array(
    store: wasmtime.Store,
    instance: wasmtime.Instance,
    name: str,
    inputs: list[np.ndarray],
    limit_bytes: int | None = None,
) -> np.ndarray:
    """Run one call under the array convention; returns a new float32 array of length N.

    ``limit_bytes`` is the store's memory limit, named in the error when the
    inputs do not fit.

    Raises TrapError when memory cannot grow to hold the inputs or when the
    returned offset leaves fewer than N f32 before the end of memory.
    wasmtime traps propagate unchanged.
    """
    exports = instance.exports(store)
    memory = exports["memory"]
    func = exports[name]
    assert isinstance(memory, wasmtime.Memory) and isinstance(func, wasmtime.Func)
    count = len(inputs[0])
    array_bytes = 4 * count

    _ensure_memory(store, memory, name, array_bytes * (len(inputs) + 1), limit_bytes)
    if count:
        view = memory_bytes(store, memory)
        for index, array in enumerate(inputs):
            start = index * array_bytes
            view[start : start + array_bytes] = array.view(np.uint8)

    returned = func(store, 0, count)
    assert isinstance(returned, int)
    offset = returned & 0xFFFFFFFF
    size = memory.data_len(store)
    if offset + array_bytes > size:
        raise TrapError(
            f"{name!r} returned offset {offset}, but {count} f32 from there would end at byte "
            f"{offset + array_bytes}, past the end of its memory ({size} bytes)",
            function=name,
            cause="result offset outside memory",
        )
    if count == 0:
        return np.zeros(0, dtype=F32)
    return memory_bytes(store, memory)[offset : offset + array_bytes].view(F32).copy()


def memory_bytes(store: wasmtime.Store | wasmtime.Caller, memory: wasmtime.Memory) -> np.ndarray:
    """Return a uint8 numpy view of the whole linear memory (valid until the memory grows)."""
    size = memory.data_len(store)
    if size == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(memoryview(memory.get_buffer_ptr(store, size)), dtype=np.uint8)


def _ensure_memory(
    store: wasmtime.Store,
    memory: wasmtime.Memory,
    name: str,
    needed: int,
    limit_bytes: int | None = None,
) -> None:
    size = memory.data_len(store)
    if needed <= size:
        return
    pages = -(-(needed - size) // PAGE_BYTES)
    try:
        memory.grow(store, pages)
    except wasmtime.WasmtimeError as exc:
        maximum = memory.type(store).limits.max
        if maximum is not None and needed > maximum * PAGE_BYTES:
            reason = (
                f"the module declares a maximum of {maximum} pages; the function must not "
                "limit its memory"
            )
        else:
            limit = f" of {limit_bytes // 2**20:,} MiB" if limit_bytes else ""
            reason = (
                f"that is over the memory limit{limit}; raise it with --memory-mb or QT45_MEMORY_MB"
            )
        raise TrapError(
            f"{name!r} cannot take these inputs: they need {needed:,} bytes of linear memory, "
            f"and {reason}",
            function=name,
            cause="memory limit",
        ) from exc


def run_array(
    runtime: WasmRuntime,
    module: wasmtime.Module,
    name: str,
    inputs: list[np.ndarray],
    linker: wasmtime.Linker | None = None,
) -> np.ndarray:
    """Instantiate ``module`` in a fresh store under the runtime's limits and call it once.

    ``linker`` supplies the imports (the GPU tier's host functions). Raises
    TrapError for traps and limits; errors raised by host functions propagate.
    """
    store = runtime.new_store()
    linker = linker or wasmtime.Linker(runtime.engine)
    # Both entries into wasm code (the start function and the call) run under
    # a fresh fuel budget and wall-clock deadline; see WasmRuntime.limited.
    with runtime.limited(store, name, "start"):
        instance = linker.instantiate(store, module)
    with runtime.limited(store, name):
        return call_array(store, instance, name, inputs, runtime.limits.memory_bytes)


def array_input_count(signature: str) -> int:
    """Return the number of inputs of an array signature such as ``(f32[], f32[]) -> f32[]``."""
    params = signature.split("->", 1)[0]
    return params.count("f32[]")


def format_array(values: np.ndarray, max_shown: int = 16) -> str:
    """Format an f32 result the way the REPL prints it; long arrays show their ends and length."""
    from .signature import format_value

    items = [format_value(float(v), "f32") for v in values[:max_shown]]
    if len(values) <= max_shown:
        return "[" + ", ".join(items) + "]"
    tail = [format_value(float(v), "f32") for v in values[-2:]]
    return (
        "["
        + ", ".join(items[: max_shown - 2])
        + ", …, "
        + ", ".join(tail)
        + f"] ({len(values):,} elements)"
    )
