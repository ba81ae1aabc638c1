"""WasmRuntime: compiles WAT with wasmtime and runs scalar calls under limits."""

from __future__ import annotations

import hashlib
import logging
import platform
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

from .config import Limits, default_key_path, how_to_raise
from .errors import CompileError, TrapError
from .fastcall import FAST_PATH_AVAILABLE, RawCaller, fast_path_unavailable_reason
from .modcache import ModuleAuthenticator
from .signature import Scalar, Signature, convert_arguments
from .store import FunctionRecord
from .watchdog import TICKER, deadline_ticks

log = logging.getLogger(__name__)


def _wasmtime_version() -> str:
    """Read wasmtime-py's version from its dist-info folder name, without importlib.metadata.

    importlib.metadata costs about 20 ms to import, a large share of a
    one-shot CLI call; the folder name carries the same version.
    """
    site = Path(wasmtime.__file__).resolve().parent.parent
    found = sorted(site.glob("wasmtime-*.dist-info"))
    if len(found) == 1:
        return found[0].name.removeprefix("wasmtime-").removesuffix(".dist-info")
    import importlib.metadata

    return importlib.metadata.version("wasmtime")


WASMTIME_VERSION = _wasmtime_version()

TRAP_CAUSES = {
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer divide by zero",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer overflow",
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "out-of-bounds memory access",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "out-of-bounds table access",
    wasmtime.TrapCode.UNREACHABLE: "unreachable instruction executed",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "indirect call to a null table entry",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect call with a mismatched signature",
    wasmtime.TrapCode.HEAP_MISALIGNED: "misaligned memory access",
}


@dataclass(frozen=True)
class HostImport:
    """A host function that a tier lets its modules import, with its exact type."""

    module: str
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...] = ()

    @property
    def signature(self) -> Signature:
        return Signature(self.params, self.results)

    def __str__(self) -> str:
        return f"{self.module}.{self.name} {self.signature}"


GPU_IMPORTS = (
    HostImport("gpu", "alloc", ("i32",), ("i32",)),
    HostImport("gpu", "write_buffer", ("i32", "i32", "i32")),
    HostImport("gpu", "dispatch_shader", ("i32", "i32", "i32", "i32")),
    HostImport("gpu", "read_buffer", ("i32", "i32", "i32")),
)
"""The only imports a GPU-tier module may have; scalar and SIMD modules may import nothing."""


@dataclass
class CompiledModule:
    """A module compiled from WAT, with the portable wasm bytes it came from."""

    module: wasmtime.Module
    wasm: bytes


@dataclass
class LoadedFunction:
    """A function ready to call: module, export name and its scalar signature."""

    name: str
    signature: Signature
    module: wasmtime.Module
    store: wasmtime.Store | None = None
    func: wasmtime.Func | None = None
    instance: wasmtime.Instance | None = None
    raw: RawCaller | None = None
    """Fast-path caller bound to ``store``; None where the C entry point is missing."""
    recompiled: bool = False
    """True when stored native code was rejected and the module was rebuilt from wasm."""
    native_saved: bool = False
    """True once fresh native code for a recompiled module has been written back."""
    extra: dict[str, Any] = field(default_factory=dict)


class WasmRuntime:
    """Compiles, checks, loads and calls modules; one wasmtime engine per runtime."""

    def __init__(
        self,
        limits: Limits | None = None,
        key_path: Path | None = None,
        *,
        consume_fuel: bool = True,
    ) -> None:
        """Create an engine with the limits; ``consume_fuel=False`` leaves the CPU bound
        to the wall-clock deadline alone.

        Fuel metering costs a counter update per basic block, about a third of
        the time of a tight v128 loop, so the array tiers run without it and
        rely on the epoch deadline.
        """
        self.limits = limits or Limits()
        self.limits.check()
        self.consume_fuel = consume_fuel
        config = wasmtime.Config()
        config.consume_fuel = consume_fuel
        config.epoch_interruption = True
        config.max_wasm_stack = self.limits.wasm_stack_bytes
        config.wasm_simd = True
        self.engine = wasmtime.Engine(config)
        self.fingerprint = (
            f"wasmtime={WASMTIME_VERSION};machine={platform.machine()};"
            f"fuel={int(consume_fuel)};epoch=1;stack={self.limits.wasm_stack_bytes};simd=1"
        )
        self.auth = ModuleAuthenticator(key_path or default_key_path(), self.fingerprint)
        self.deadline_ticks = deadline_ticks(self.limits.call_timeout_s)
        self.ticker = TICKER.register(self.engine, self.limits.call_timeout_s)
        if not FAST_PATH_AVAILABLE:
            log.info(
                "scalar fast path unavailable in wasmtime-py %s (%s); using Func.__call__",
                WASMTIME_VERSION,
                fast_path_unavailable_reason(),
            )
        self._loaded: dict[tuple[int | None, str, bytes], LoadedFunction] = {}

    # -- compiling and checking ---------------------------------------

    def compile(self, wat: str) -> CompiledModule:
        """Compile WAT (or wasm bytes given as text) to a module; raises CompileError."""
        try:
            wasm = bytes(wasmtime.wat2wasm(wat))
        except wasmtime.WasmtimeError as exc:
            raise CompileError(f"WAT parse error: {_clean_error(exc)}") from exc
        try:
            module = wasmtime.Module(self.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise CompileError(f"WebAssembly validation error: {_clean_error(exc)}") from exc
        return CompiledModule(module, wasm)

    def check_scalar(self, compiled: CompiledModule, name: str, signature: Signature) -> None:
        """Check the scalar-tier contract: no imports, and ``name`` exported with this type."""
        check_imports(compiled.module, (), "scalar")
        check_export_type(compiled.module, name, signature)

    # -- loading -------------------------------------------------------

    def serialize(self, compiled: CompiledModule) -> tuple[bytes | None, bytes | None]:
        """Return (native code, tag) to store with a function, or (None, None) without a key."""
        blob = bytes(compiled.module.serialize())
        tag = self.auth.sign(compiled.wasm, blob)
        return (blob, tag) if tag is not None else (None, None)

    def load_module(self, record: FunctionRecord) -> tuple[wasmtime.Module, bool]:
        """Return the module of a stored function and whether it had to be recompiled.

        Stored native code is used only if its tag verifies; otherwise the
        module is compiled again from the stored wasm bytes.
        """
        if self.auth.verify(record.wasm, record.compiled, record.compiled_tag):
            assert record.compiled is not None
            try:
                return wasmtime.Module.deserialize(self.engine, record.compiled), False
            except wasmtime.WasmtimeError as exc:
                log.info("stored native code of %s rejected (%s); recompiling", record.name, exc)
        try:
            return wasmtime.Module(self.engine, record.wasm), True
        except wasmtime.WasmtimeError as exc:
            raise CompileError(
                f"stored function {record.name!r} no longer compiles: {_clean_error(exc)}; "
                f"delete it with .delete {record.name}"
            ) from exc

    def load(self, record: FunctionRecord) -> LoadedFunction:
        """Return a callable scalar function for ``record``, cached for this process."""
        key = (record.id, record.signature, hashlib.sha256(record.wasm).digest())
        cached = self._loaded.get(key)
        if cached is not None:
            return cached
        module, recompiled = self.load_module(record)
        signature = Signature.parse(record.signature)
        compiled = CompiledModule(module, record.wasm)
        self.check_scalar(compiled, record.name, signature)
        loaded = LoadedFunction(record.name, signature, module, recompiled=recompiled)
        self._loaded[key] = loaded
        return loaded

    def forget(self, function_id: int | None) -> None:
        """Drop cached modules of a function (after delete or replace)."""
        for key in [key for key in self._loaded if key[0] == function_id]:
            del self._loaded[key]

    # -- calling -------------------------------------------------------

    def new_store(self) -> wasmtime.Store:
        """Return a store with this runtime's memory, table and instance limits."""
        store = wasmtime.Store(self.engine)
        store.set_limits(
            memory_size=self.limits.memory_bytes,
            table_elements=self.limits.table_elements,
            instances=self.limits.instances,
            tables=self.limits.instances,
            memories=self.limits.instances,
        )
        if self.consume_fuel:
            store.set_fuel(self.limits.fuel)
        store.set_epoch_deadline(self.deadline_ticks)
        return store

    @contextmanager
    def limited(self, store: wasmtime.Store, name: str, phase: str = "call") -> Iterator[None]:
        """Run the body, which enters wasm code of ``store``, under a fresh fuel budget and deadline.

        Every entry into wasm code (instantiation, which runs the start
        function, and each call) must go through this or through a fast call
        built by ``fastcall.RawCaller.compile_fast``, because the epoch
        deadline is counted from the moment it is set. Traps and limit
        failures become TrapError naming ``name``, the cause and the setting
        that raises the limit; ``phase`` is ``call`` or ``start``.
        """
        self.ticker.touch()
        if self.consume_fuel:
            store.set_fuel(self.limits.fuel)
        store.set_epoch_deadline(self.deadline_ticks)
        try:
            yield
        except wasmtime.Trap as exc:
            raise self.trap_error(name, exc) from exc
        except wasmtime.WasmtimeError as exc:
            raise self.limit_error(name, exc, phase) from exc

    def instantiate(
        self,
        store: wasmtime.Store,
        module: wasmtime.Module,
        imports: Sequence[wasmtime.Func] = (),
        name: str = "module",
    ) -> wasmtime.Instance:
        """Instantiate ``module`` in ``store`` under the limits; raises TrapError."""
        with self.limited(store, name, "start"):
            return wasmtime.Instance(store, module, list(imports))

    def prepare(self, loaded: LoadedFunction) -> None:
        """Create the store and instance that calls of ``loaded`` run in."""
        store = self.new_store()
        instance = self.instantiate(store, loaded.module, (), loaded.name)
        func = instance.exports(store)[loaded.name]
        assert isinstance(func, wasmtime.Func)
        loaded.store, loaded.instance, loaded.func = store, instance, func
        loaded.raw = RawCaller(store, func, loaded.signature) if FAST_PATH_AVAILABLE else None

    def call_scalar(
        self, loaded: LoadedFunction, args: list[Scalar] | tuple[Scalar, ...]
    ) -> list[Scalar]:
        """Call a scalar function with converted arguments; returns its results as a list.

        Raises ArgumentError for arguments that do not fit and TrapError when the
        call traps or exceeds a limit. After a trap the instance is rebuilt.
        """
        return self.call_converted(loaded, convert_arguments(args, loaded.signature))

    def call_converted(self, loaded: LoadedFunction, values: list[Scalar]) -> list[Scalar]:
        """Call with arguments already converted to the signature's types (see call_scalar)."""
        if loaded.func is None:
            self.prepare(loaded)
        assert loaded.store is not None and loaded.func is not None
        try:
            with self.limited(loaded.store, loaded.name):
                if loaded.raw is not None:
                    return loaded.raw(values)
                result = loaded.func(loaded.store, *values)
        except TrapError:
            loaded.func = None
            raise
        if result is None:
            return []
        if isinstance(result, list | tuple):
            return list(result)
        return [result]

    def limit_error(self, name: str, error: wasmtime.WasmtimeError, phase: str) -> TrapError:
        """Turn a wasmtime error outside a trap (mostly a resource limit) into one message."""
        text = _clean_error(error)
        verb = "failed to start" if phase == "start" else "failed"
        memory = re.search(r"memory minimum size of (\d+) pages exceeds memory limits", text)
        if memory:
            pages = int(memory.group(1))
            cause = "linear-memory limit exceeded"
            message = (
                f"{name!r} {verb}: it needs {pages * 64 / 1024:g} MiB of linear memory, more than "
                f"the limit of {self.limits.memory_bytes / 2**20:g} MiB; {how_to_raise('memory_bytes')}"
            )
        elif "table minimum size" in text and "exceeds table limits" in text:
            cause = "table limit exceeded"
            message = (
                f"{name!r} {verb}: {text}; the limit is {self.limits.table_elements:,} table "
                f"elements; {how_to_raise('table_elements')}"
            )
        elif "count too high" in text:
            cause = "instance limit exceeded"
            message = (
                f"{name!r} {verb}: {text}; the limit is {self.limits.instances} instances, "
                f"memories and tables per call; {how_to_raise('instances')}"
            )
        else:
            cause = text
            message = f"{name!r} {verb}: {text}"
        return TrapError(message, function=name, cause=cause)

    def trap_error(self, name: str, trap: wasmtime.Trap) -> TrapError:
        """Turn a wasmtime trap into one message naming the function, the cause and the fix."""
        code = trap.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            cause = "CPU limit exceeded"
            message = (
                f"{name!r} stopped: it used all {self.limits.fuel:,} fuel units (the CPU limit); "
                f"{how_to_raise('fuel')}"
            )
        elif code == wasmtime.TrapCode.INTERRUPT:
            cause = "time limit exceeded"
            message = (
                f"{name!r} stopped: it ran longer than {self.limits.call_timeout_s:g} s "
                f"(the wall-clock limit); {how_to_raise('call_timeout_s')}"
            )
        elif code == wasmtime.TrapCode.STACK_OVERFLOW:
            cause = "call stack exhausted"
            message = (
                f"{name!r} stopped: call stack exhausted (the stack limit is "
                f"{self.limits.wasm_stack_bytes // 1024} KiB); {how_to_raise('wasm_stack_bytes')}"
            )
        else:
            known = TRAP_CAUSES.get(code) if code is not None else None
            cause = known or _last_cause_line(trap.message)
            message = f"{name!r} trapped: {cause}"
        return TrapError(message, function=name, cause=cause)


def check_imports(module: wasmtime.Module, allowed: Iterable[HostImport], tier: str) -> None:
    """Raise CompileError unless every import of ``module`` is one of ``allowed``, with its type.

    The message is written to go back to the model as retry feedback. A module
    may import any subset of ``allowed``. Other namespaces and names (WASI,
    ``env``), non-function imports and functions of another type are rejected.
    """
    permitted = {(item.module, item.name): item for item in allowed}
    foreign = [item for item in module.imports if (item.module, item.name or "") not in permitted]
    if foreign:
        listed = ", ".join(f"{item.module}.{item.name}" for item in foreign)
        if not permitted:
            raise CompileError(
                f"the module imports {listed}, but {tier} functions may import nothing; "
                "remove every import and compute the result inside the module"
            )
        choices = ", ".join(str(item) for item in permitted.values())
        raise CompileError(
            f"the module imports {listed}, but {tier} functions may import only {choices}; "
            "remove the other imports"
        )
    for item in module.imports:
        expected = permitted[(item.module, item.name or "")]
        import_type = item.type
        if not isinstance(import_type, wasmtime.FuncType):
            raise CompileError(
                f"the import {item.module}.{item.name} is not a function; import it as "
                f"(func (param {' '.join(expected.params)})"
                + (f" (result {' '.join(expected.results)})" if expected.results else "")
                + ")"
            )
        found = Signature(
            tuple(str(value) for value in import_type.params),
            tuple(str(value) for value in import_type.results),
        )
        if found != expected.signature:
            raise CompileError(
                f"the import {item.module}.{item.name} has type {found}, but it must be "
                f"{expected.signature}"
            )


def check_export_type(module: wasmtime.Module, name: str, signature: Signature) -> None:
    """Raise CompileError unless ``module`` exports function ``name`` with exactly ``signature``."""
    exports = {item.name: item.type for item in module.exports}
    if name not in exports:
        names = ", ".join(repr(n) for n in exports) or "nothing"
        raise CompileError(
            f"the module must export a function named {name!r}, but it exports {names}"
        )
    func_type = exports[name]
    if not isinstance(func_type, wasmtime.FuncType):
        raise CompileError(f"the export {name!r} is not a function")
    params = tuple(str(item) for item in func_type.params)
    results = tuple(str(item) for item in func_type.results)
    if params != signature.params or results != signature.results:
        found = Signature(params, results)
        raise CompileError(
            f"the export {name!r} has type {found}, but the requested type is {signature}"
        )


def _clean_error(exc: Exception) -> str:
    return str(exc).strip()


def _last_cause_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    cause = lines[-1] if lines else "trap"
    for prefix in ("wasm trap:", "1: wasm trap:", "0:", "1:"):
        if cause.startswith(prefix):
            cause = cause[len(prefix) :].strip()
    return cause
