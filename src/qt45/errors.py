"""The exception family of qt45.

Every error a user can cause derives from Qt45Error and carries one message
that names the value at fault and what to do next. The CLI and the REPL print
that message alone; ``QT45_DEBUG=1`` also prints the traceback.
"""

from __future__ import annotations


class Qt45Error(Exception):
    """Base class of every error qt45 reports to a user."""


class ParseError(Qt45Error):
    """A REPL line, signature or argument list that does not parse."""


class ArgumentError(Qt45Error):
    """A call argument that does not fit the parameter type."""


class CompileError(Qt45Error):
    """WAT that does not compile, or a module that breaks the tier's contract."""


class ShaderError(CompileError):
    """A WGSL shader that wgpu rejects, or a dispatch the GPU tier's contract forbids."""


class TrapError(Qt45Error):
    """A WebAssembly trap or an execution limit that stopped a call."""

    def __init__(self, message: str, *, function: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.function = function
        self.cause = cause


class StoreError(Qt45Error):
    """A library file that cannot be opened, read or written."""


class LlmError(Qt45Error):
    """A failed exchange with the model server."""


class LlmUnavailable(LlmError):
    """No model server responds at the configured URL, or the model is missing."""


class SynthesisError(Qt45Error):
    """Every generation attempt failed, so nothing was stored."""


class GpuUnavailable(Qt45Error):
    """No GPU adapter (hardware or software) is available for the GPU tier."""


class GpuBusy(GpuUnavailable):
    """The GPU still runs a shader that an earlier call stopped waiting for at its time limit."""


class NotFoundError(Qt45Error):
    """A function name that is not in the library."""
