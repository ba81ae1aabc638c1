"""Scalar cache hits: qt45's Python API against wasmtime-py and the raw C-API call."""

from __future__ import annotations

import ctypes
from pathlib import Path

import wasmtime
from wasmtime import _bindings, _ffi

from harness import Timing, time_call
from qt45 import Config, Qt45, Reporter

ADD_WAT = (
    '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
)
ADD_SIGNATURE = "(i32, i32) -> i32"


def raw_c_api_floor() -> Timing:
    """Time the bare ``wasmtime_func_call_unchecked`` call with a preallocated raw-value array."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    func = wasmtime.Instance(store, wasmtime.Module(engine, ADD_WAT), []).exports(store)["add"]
    assert isinstance(func, wasmtime.Func)
    values = (_ffi.wasmtime_val_raw_t * 2)()
    values[0].i32, values[1].i32 = 10, 20
    trap = ctypes.POINTER(_ffi.wasm_trap_t)()
    call = _bindings._wasmtime_func_call_unchecked
    context, func_ref, trap_ref = store._context(), ctypes.byref(func._func), ctypes.byref(trap)

    def run() -> None:
        values[0].i32 = 10
        call(context, func_ref, values, 2, trap_ref)

    return time_call("raw C-API call (wasmtime_func_call_unchecked)", run)


def func_call_floor() -> Timing:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    func = wasmtime.Instance(store, wasmtime.Module(engine, ADD_WAT), []).exports(store)["add"]
    assert isinstance(func, wasmtime.Func)
    return time_call("wasmtime-py Func.__call__", lambda: func(store, 10, 20))


def qt45_timings(folder: Path) -> list[Timing]:
    """Time the handle API, the full request path and the pieces of a handle call."""
    config = Config(db_path=folder / "scalar.db", llm="scripted", key_path=folder / "key")
    with Qt45(config, reporter=Reporter()) as lib:
        lib.call("add", "adds two integers", ADD_SIGNATURE, 1, 2)
        add = lib.function("add", "adds two integers", ADD_SIGNATURE)
        loaded = add._loaded
        raw = loaded.raw
        assert raw is not None and loaded.store is not None
        store = loaded.store
        fuel = lib.runtime.limits.fuel
        function_id = add.record.id or 0
        return [
            time_call("qt45 handle: add(10, 20)", lambda: add(10, 20)),
            time_call(
                "qt45 request path: lib.call('add', …, 10, 20)",
                lambda: lib.call("add", "adds two integers", ADD_SIGNATURE, 10, 20),
            ),
            time_call("  part: Store.set_fuel", lambda: store.set_fuel(fuel)),
            time_call("  part: RawCaller call", lambda: raw([10, 20])),
            time_call("  part: call-count update", lambda: lib.store.record_call(function_id)),
        ]


def run(folder: Path) -> dict[str, Timing]:
    """Measure everything for the scalar table; keys are stable names for the report."""
    raw = raw_c_api_floor()
    func = func_call_floor()
    handle, request, *parts = qt45_timings(folder)
    results = {"raw": raw, "func": func, "handle": handle, "request": request}
    for index, part in enumerate(parts):
        results[f"part{index}"] = part
    return results
