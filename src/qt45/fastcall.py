"""Fast scalar calls through wasmtime's unchecked C entry point.

``wasmtime.Func.__call__`` looks up the function type and converts every
value through ``Val`` on each call. ``wasmtime_func_call_unchecked`` takes a
preallocated array of raw values instead. It is only safe when the caller
guarantees the function's type. So a ``RawCaller`` is built only for a
function whose export type was checked against its signature at load time,
and arguments are range-checked before they are written.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import wasmtime

from .signature import F32_MAX, Scalar, Signature
from .watchdog import EngineTicker

log = logging.getLogger(__name__)

try:
    from wasmtime import _bindings as _wasmtime_bindings
    from wasmtime import _ffi as _wasmtime_ffi
    from wasmtime._func import maybe_raise_last_exn as _maybe_raise_last_exn

    # The ctypes function itself, without the Python wrapper that _ffi exports.
    _CALL_UNCHECKED: Any = _wasmtime_bindings._wasmtime_func_call_unchecked
    _SET_FUEL: Any = _wasmtime_bindings._wasmtime_context_set_fuel
    _SET_DEADLINE: Any = _wasmtime_bindings._wasmtime_context_set_epoch_deadline
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

    The caller must convert arguments to the signature's types first. Values
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
        if self._trap or error:
            self.raise_failure(error)
        return [read() for read in self._readers]

    def raise_failure(self, error: Any) -> None:
        """Raise the trap or error that the last call left behind, and reset the trap slot."""
        if self._trap:
            trap = wasmtime.Trap._from_ptr(_TRAP_POINTER(self._trap.contents))
            ctypes.memset(ctypes.addressof(self._trap), 0, ctypes.sizeof(self._trap))
            _maybe_raise_last_exn()
            raise trap
        _maybe_raise_last_exn()
        raise wasmtime.WasmtimeError._from_ptr(error)

    def compile_fast(
        self,
        ticker: EngineTicker,
        fuel: int,
        deadline_ticks: int,
        slow_call: Callable[[tuple[object, ...]], object],
    ) -> Callable[..., object]:
        """Generate a call function specialised for this signature.

        The generated function checks each argument with one type test and a
        range comparison and writes it to the raw-value array. It then marks
        the call on ``ticker``, refills the fuel budget and sets the epoch
        deadline, the same limits as ``WasmRuntime.limited``. After the call
        it returns the single result, a tuple of results, or None. Arguments
        that need conversion or a precise error go to ``slow_call`` with the
        argument tuple, and ``raise_failure`` raises a trap or error.
        """
        names = [f"a{i}" for i in range(len(self.params))]
        checks = " and ".join(
            _CHECKS[kind].format(name) for name, kind in zip(names, self.params, strict=True)
        )
        writes = "".join(f"        v{i}.{kind} = a{i}\n" for i, kind in enumerate(self.params))
        reads = [f"v{i}.{kind}" for i, kind in enumerate(self.results)]
        if len(reads) == 1:
            result = reads[0]
        elif reads:
            result = "(" + ", ".join(reads) + ",)"
        else:
            result = "None"
        unpack = f"        {', '.join(names)}, = args\n" if names else ""
        source = (
            "def fast_call(*args):\n"
            f"    if len(args) == {len(names)}:\n"
            f"{unpack}"
            f"        if not ({checks or 'True'}):\n"
            "            return slow_call(args)\n"
            f"{writes}"
            "        ticker.last_used = monotonic()\n"
            "        if not ticker.ticking:\n"
            "            ticker.owner.start(ticker)\n"
            "        set_fuel(context, fuel)\n"
            "        set_deadline(context, deadline_ticks)\n"
            "        error = call(context, func_ref, values, size, trap_ref)\n"
            "        if trap or error:\n"
            "            raise_failure(error)\n"
            f"        return {result}\n"
            "    return slow_call(args)\n"
        )
        namespace: dict[str, Any] = {
            "slow_call": slow_call,
            "ticker": ticker,
            "monotonic": time.monotonic,
            "set_fuel": _SET_FUEL,
            "fuel": fuel,
            "set_deadline": _SET_DEADLINE,
            "deadline_ticks": deadline_ticks,
            "call": _CALL_UNCHECKED,
            "context": self._context,
            "func_ref": self._func_ref,
            "values": self._values,
            "size": self._size,
            "trap": self._trap,
            "trap_ref": self._trap_ref,
            "raise_failure": self.raise_failure,
            "F32_MAX": F32_MAX,
        }
        for index in range(self._size):
            namespace[f"v{index}"] = self._values[index]
        exec(compile(source, f"<qt45 fast call {self.func!r}>", "exec"), namespace)
        fast_call: Callable[..., object] = namespace["fast_call"]
        return fast_call


# One type test and a range check per parameter type; anything else takes the
# slow path, which converts or rejects it. Writing a float to an f32 slot rounds
# to the nearest float32, as signature.convert_argument does.
_CHECKS = {
    "i32": "(type({0}) is int and -2147483648 <= {0} <= 2147483647)",
    "i64": "(type({0}) is int and -9223372036854775808 <= {0} <= 9223372036854775807)",
    "f64": "(type({0}) is float and -1.8e308 < {0} < 1.8e308)",
    "f32": "(type({0}) is float and -F32_MAX <= {0} <= F32_MAX)",
}


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
