"""qt45: a self-improving function library.

An LLM writes each new function once as WebAssembly; qt45 compiles, verifies
and stores it, and answers every later request from the library.
"""

from .config import Config, Limits
from .embeddings import EmbeddingUnavailable
from .engine import Qt45, Stats
from .errors import (
    ArgumentError,
    CompileError,
    LlmError,
    LlmUnavailable,
    NotFoundError,
    ParseError,
    Qt45Error,
    StoreError,
    SynthesisError,
    TrapError,
)
from .guard import TestGuard
from .llm import ChatModel, ChatTask, LlmClient
from .parser import parse_line
from .report import ConsoleReporter, Reporter
from .request import ArrayRequest, CallResult, ScalarRequest
from .runtime import WasmRuntime
from .scripted import ScriptedModel
from .search import ExactSearch, HybridSearch, Searcher, SearchMatch, SearchQuery
from .signature import Signature, Tier
from .store import FunctionRecord, FunctionStore, TestCase

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "ArrayRequest",
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
    "ScalarRequest",
    "ScriptedModel",
    "SearchMatch",
    "SearchQuery",
    "Searcher",
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
    "parse_line",
]
