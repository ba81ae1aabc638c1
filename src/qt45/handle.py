"""ScalarFunction: a stored scalar function bound for repeated calls from Python."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .runtime import LoadedFunction, WasmRuntime
from .signature import Scalar, Signature, fast_converter
from .store import FunctionRecord, FunctionStore

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class ScalarFunction:
    """Call a library function like a Python function: ``add(10, 20)``.

    Obtained from ``Qt45.function``. The module is loaded once; each call
    converts the arguments, runs under the runtime's limits and counts the
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
        self._convert: Callable[[Sequence[object]], list[Scalar]] = fast_converter(loaded.signature)
        self._single = len(loaded.signature.results) == 1

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def verified(self) -> bool:
        return self.record.verified

    def __call__(self, *args: Scalar) -> Scalar | tuple[Scalar, ...] | None:
        """Return the single result, a tuple for several results, or None for none.

        Raises ArgumentError for arguments that do not fit the signature and
        TrapError when the call traps or exceeds a limit.
        """
        values = self._runtime.call_converted(self._loaded, self._convert(args))
        if self.record.id is not None:
            self._store.record_call(self.record.id)
        if self._single:
            return values[0]
        return tuple(values) if values else None

    def __repr__(self) -> str:
        state = "verified" if self.record.verified else "unverified"
        return f"<ScalarFunction {self.record.name} {self.record.signature} {state}>"
