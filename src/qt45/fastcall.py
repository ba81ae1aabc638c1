"""Fast scalar calls through wasmtime's unchecked C entry point.

``wasmtime.Func.__call__`` looks up the function type and converts every
value through ``Val`` on each call. ``wasmtime_func_call_unchecked`` takes a
preallocated array of raw values instead. It is only safe when the caller
guarantees the function's type, so a ``RawCaller`` is built only for a
function whose export type was checked against its signature when it was
loaded, and arguments are converted (range-checked) before they are written.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Sequence
from typing import Any

import wasmtime

from .signature import Scalar, Signature

log = logging.getLogger(__name__)

try:
    from wasmtime import _bindings as _wasmtime_bindings
    from wasmtime import _ffi as _wasmtime_ffi
    from wasmtime._func import maybe_raise_last_exn as _maybe_raise_last_exn

    # The ctypes function itself, without the Python wrapper that _ffi exports.
    _CALL_UNCHECKED: Any = _wasmtime_bindings._wasmtime_func_call_unchecked
    _RAW_VALUE: Any = _wasmtime_ffi.wasmtime_val_raw_t
    _TRAP_POINTER: Any = ctypes.POINTER(_wasmtime_ffi.wasm_trap_t)
    FAST_PATH_AVAILABLE = True
except (ImportError, AttributeError) as exc:  # another wasmtime-py layout
    FAST_PATH_AVAILABLE = False
    _UNAVAILABLE_REASON = str(exc)


def fast_path_unavailable_reason() -> str:
    """Explain why the fast path is off, for ``--verbose`` output."""
    return "" if FAST_PATH_AVAILABLE else _UNAVAILABLE_REASON


class RawCaller:
    """Calls one function of one store through the unchecked entry point.

    The caller must convert arguments to the signature's types first; values
    are written to a preallocated raw-value array, so no per-call type lookup
    or allocation happens.
    """

    def __init__(self, store: wasmtime.Store, func: wasmtime.Func, signature: Signature) -> None:
        self.store = store
        self.func = func
        self.params = signature.params
        self.results = signature.results
        self._size = max(len(self.params), len(self.results), 1)
        self._values = (_RAW_VALUE * self._size)()
        self._context = store._context()
        self._func_ref = ctypes.byref(func._func)
        self._trap = _TRAP_POINTER()
        self._trap_ref = ctypes.byref(self._trap)
        self._writers = [_writer(self._values, i, kind) for i, kind in enumerate(self.params)]
        self._readers = [_reader(self._values, i, kind) for i, kind in enumerate(self.results)]

    def __call__(self, args: Sequence[Scalar]) -> list[Scalar]:
        """Call with already converted ``args``; raises wasmtime.Trap or WasmtimeError."""
        for write, value in zip(self._writers, args, strict=True):
            write(value)
        error = _CALL_UNCHECKED(
            self._context, self._func_ref, self._values, self._size, self._trap_ref
        )
        if self._trap:
            trap = wasmtime.Trap._from_ptr(self._trap)
            self._trap = _TRAP_POINTER()
            self._trap_ref = ctypes.byref(self._trap)
            _maybe_raise_last_exn()
            raise trap
        if error:
            _maybe_raise_last_exn()
            raise wasmtime.WasmtimeError._from_ptr(error)
        return [read() for read in self._readers]


def _writer(values: Any, index: int, kind: str) -> Callable[[Scalar], None]:
    slot = values[index]

    def write(value: Scalar) -> None:
        setattr(slot, kind, value)

    return write


def _reader(values: Any, index: int, kind: str) -> Callable[[], Scalar]:
    slot = values[index]

    def read() -> Scalar:
        value: Scalar = getattr(slot, kind)
        return value

    return read
