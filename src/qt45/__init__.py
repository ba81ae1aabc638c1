"""qt45: a self-improving function library.

An LLM writes each new function once as WebAssembly; qt45 compiles, verifies
and stores it, and serves every later request from the library.
"""

from .chat import ChatModel, ChatTask
from .config import Config, Limits
from .engine import Qt45, Stats
from .errors import (
    ArgumentError,
    CompileError,
    GpuBusy,
    GpuUnavailable,
    LlmError,
    LlmUnavailable,
    NotFoundError,
    ParseError,
    Qt45Error,
    ShaderError,
    StoreError,
    SynthesisError,
    TrapError,
)
from .handle import ScalarFunction
from .parser import parse_line
from .report import ConsoleReporter, Reporter
from .request import ArrayRequest, CallResult, ScalarRequest
from .runtime import WasmRuntime
from .scripted import ScriptedModel
from .signature import Signature, Tier
from .store import FunctionRecord, FunctionStore, TestCase

__version__ = "0.1.0"


# Names whose modules load on first access, so that ``import qt45`` and a cache
# hit stay fast: search pulls in the embedding code, the array tiers numpy.
_LAZY = {
    "EmbeddingUnavailable": "embeddings",
    "TestGuard": "guard",
    "ExactSearch": "search",
    "HybridSearch": "search",
    "Searcher": "search",
    "SearchMatch": "search",
    "SearchQuery": "search",
}


def __getattr__(name: str) -> object:
    # LlmClient pulls in httpx, so it loads only on first access.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name == "LlmClient":
        from .llm import LlmClient

        return LlmClient
    # These pull in numpy and the GPU tier, which load on first use.
    if name in ("BenchResult", "bench"):
        from . import arraybench as bench_module

        return getattr(bench_module, name)
    if name == "ArrayFunction":
        from .arrayhandle import ArrayFunction

        return ArrayFunction
    if name in ("AdapterInfo", "GpuContext"):
        from . import gpu

        return getattr(gpu, name)
    raise AttributeError(f"module 'qt45' has no attribute {name!r}")


__all__ = [
    "AdapterInfo",
    "ArgumentError",
    "ArrayFunction",
    "ArrayRequest",
    "BenchResult",
    "CallResult",
    "ChatModel",
    "ChatTask",
    "CompileError",
    "Config",
    "ConsoleReporter",
    "EmbeddingUnavailable",
    "ExactSearch",
    "FunctionRecord",
    "FunctionStore",
    "GpuBusy",
    "GpuContext",
    "GpuUnavailable",
    "HybridSearch",
    "Limits",
    "LlmClient",
    "LlmError",
    "LlmUnavailable",
    "NotFoundError",
    "ParseError",
    "Qt45",
    "Qt45Error",
    "Reporter",
    "ScalarFunction",
    "ScalarRequest",
    "ScriptedModel",
    "SearchMatch",
    "SearchQuery",
    "Searcher",
    "ShaderError",
    "Signature",
    "Stats",
    "StoreError",
    "SynthesisError",
    "TestCase",
    "TestGuard",
    "Tier",
    "TrapError",
    "WasmRuntime",
    "__version__",
    "bench",
    "parse_line",
]
