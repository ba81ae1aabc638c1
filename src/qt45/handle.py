"""ScalarFunction: a stored scalar function bound for repeated calls from Python."""

from __future__ import annotations

from collections.abc import Callable

import wasmtime

from .errors import TrapError
from .runtime import LoadedFunction, WasmRuntime
from .signature import Scalar, Signature
from .store import FunctionRecord, FunctionStore

Result = Scalar | tuple[Scalar, ...] | None


class ScalarFunction:
    """Call a library function like a Python function: ``add(10, 20)``.

    Obtained from ``Qt45.function``. The module is loaded once; each call
    checks the arguments, runs under the runtime's limits and counts the
    call. The handle keeps the module it loaded even if the library changes
    later; ask ``Qt45.function`` again to pick up a replaced function.
    """

    def __init__(
        self,
        record: FunctionRecord,
        loaded: LoadedFunction,
        runtime: WasmRuntime,
        store: FunctionStore,
    ) -> None:
        self.record = record
        self.signature: Signature = loaded.signature
        self._loaded = loaded
        self._runtime = runtime
        self._store = store
        self._fast: Callable[..., object] | None = None

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def verified(self) -> bool:
        return self.record.verified

    def __call__(self, *args: Scalar) -> Result:
        """Return the single result, a tuple for several results, or None for none.

        Raises ArgumentError for arguments that do not fit the signature and
        TrapError when the call traps or exceeds a limit.
        """
        fast = self._fast
        if fast is None or self._loaded.func is None:
            fast = self._prepare()
        try:
            result = fast(*args)
        except wasmtime.Trap as exc:
            self._loaded.func = None
            raise self._runtime.trap_error(self.record.name, exc) from exc
        except wasmtime.WasmtimeError as exc:
            self._loaded.func = None
            raise TrapError(
                f"{self.record.name!r} failed: {exc}", function=self.record.name
            ) from exc
        if self.record.id is not None:
            self._store.record_call(self.record.id)
        return result  # type: ignore[return-value]

    def _prepare(self) -> Callable[..., object]:
        """Instantiate if needed and build the specialised call function."""
        loaded = self._loaded
        runtime = self._runtime
        if loaded.func is None:
            runtime.prepare(loaded)
        if loaded.raw is None or loaded.store is None:
            self._fast = self._slow_call
        else:
            self._fast = loaded.raw.compile_fast(
                runtime.ticker, runtime.limits.fuel, runtime.deadline_ticks, self._slow_tuple
            )
        return self._fast

    def _slow_tuple(self, args: tuple[object, ...]) -> Result:
        return self._shape(self._runtime.call_scalar(self._loaded, args))  # type: ignore[arg-type]

    def _slow_call(self, *args: Scalar) -> Result:
        return self._shape(self._runtime.call_scalar(self._loaded, args))

    def _shape(self, values: list[Scalar]) -> Result:
        if len(values) == 1:
            return values[0]
        return tuple(values) if values else None

    def __repr__(self) -> str:
        state = "verified" if self.record.verified else "unverified"
        return f"<ScalarFunction {self.record.name} {self.record.signature} {state}>"
