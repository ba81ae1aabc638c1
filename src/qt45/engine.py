"""Qt45: the request path that serves a function from the library or has it written."""

from __future__ import annotations

import atexit
from dataclasses import dataclass

from .config import Config
from .embeddings import LazyEmbedder
from .errors import Qt45Error
from .guard import TestGuard
from .llm import ChatModel, LlmClient
from .report import Reporter
from .request import CallResult, Request, ScalarRequest
from .runtime import CompiledModule, LoadedFunction, WasmRuntime
from .scalar import ScalarSpec
from .scripted import ScriptedModel
from .search import HybridSearch, Searcher
from .signature import Scalar, Signature, Tier, convert_arguments, format_value
from .store import FunctionRecord, FunctionStore
from .synth import Synthesizer


@dataclass
class Stats:
    """Counts for the summary line of a session."""

    requests: int = 0
    llm_calls: int = 0
    cache_hits: int = 0
    search_hits: int = 0
    generated: int = 0
    failures: int = 0


class Qt45:
    """The library in use: store, runtime, model and search, behind one request path.

    Use it as a context manager, or call ``close`` so that call counts are
    written. Example::

        with Qt45(Config(db_path=Path("lib.db"))) as lib:
            lib.call("add", "adds two integers", "(i32, i32) -> i32", 10, 20).value
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        model: ChatModel | None = None,
        reporter: Reporter | None = None,
        searcher: Searcher | None = None,
    ) -> None:
        self.config = config or Config()
        self.reporter = reporter or Reporter()
        self.store = FunctionStore(self.config.db_path)
        self.runtime = WasmRuntime(self.config.limits, self.config.key_path)
        self.embedder = LazyEmbedder(self.config.embedding_model)
        self.guard = TestGuard(lambda: self.model, self.runtime, self.reporter)
        self.searcher: Searcher = searcher or HybridSearch(
            self.store,
            self.embedder,
            self.guard,
            self.reporter,
            show_progress=self.config.show_progress,
        )
        self._model = model
        self.stats = Stats()
        self._closed = False
        atexit.register(self.close)

    # -- lifecycle -----------------------------------------------------

    def __enter__(self) -> Qt45:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Write pending call counts and close the library file."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.store.close()
        if isinstance(self._model, LlmClient):
            self._model.close()

    @property
    def model(self) -> ChatModel:
        """The chat model, created on first use from the configuration."""
        if self._model is None:
            if self.config.llm == "scripted":
                self._model = ScriptedModel(self.config.llm_url)
            else:
                progress = self.reporter if self.config.show_progress else None
                self._model = LlmClient(self.config, progress=progress)
        return self._model

    def warm_up(self) -> None:
        """Start loading the search's embedding model in the background."""
        preload = getattr(self.searcher, "preload", None)
        if callable(preload):
            preload()

    @property
    def llm_calls(self) -> int:
        return self._model.calls if self._model is not None else 0

    # -- requests ------------------------------------------------------

    def call(
        self, name: str, description: str, signature: str | Signature, *args: Scalar
    ) -> CallResult:
        """Request a scalar function and call it with ``args``.

        Raises a Qt45Error subclass (ParseError, ArgumentError, SynthesisError,
        TrapError, LlmUnavailable, …) with a message fit to show a user.
        """
        if isinstance(signature, str):
            signature = Signature.parse(signature)
        return self.request(ScalarRequest(name, description, signature, tuple(args)))

    def request(self, request: Request) -> CallResult:
        """Serve one request: exact hit, alias, search, or generation; then run it."""
        self.stats.requests += 1
        calls_before = self.llm_calls
        try:
            if isinstance(request, ScalarRequest):
                result = self._request_scalar(request)
            else:
                result = self._request_array(request)
        except Qt45Error:
            self.stats.failures += 1
            raise
        finally:
            self.stats.llm_calls += self.llm_calls - calls_before
        result.llm_calls = self.llm_calls - calls_before
        return result

    def _request_scalar(self, request: ScalarRequest) -> CallResult:
        self.reporter.request(request.describe())
        args = convert_arguments(request.args, request.signature)
        record, source = self.find(request)
        if record is None:
            record = self._generate(request)
            source = "generated"
        values = self._run_scalar(record, args)
        shown = _format_values(values, request.signature.results)
        suffix = "" if record.verified else " (unverified)"
        self.reporter.step("wasm", f"{shown}{suffix}")
        return CallResult(values, record, source, record.verified)

    def _request_array(self, request: Request) -> CallResult:
        raise Qt45Error(
            f"the {request.tier} tier is not available in this version; use a scalar request"
        )

    def find(self, request: Request) -> tuple[FunctionRecord | None, str]:
        """Look the request up without generating: exact hit, then alias, then search."""
        record = self.store.get(request.name, request.signature_text, request.tier)
        if record is not None:
            self.stats.cache_hits += 1
            self.reporter.step("cache", f"found {_found(record)}")
            return record, "cache"

        record = self.store.resolve_alias(request.name, request.signature_text, request.tier)
        if record is not None:
            self.stats.cache_hits += 1
            self.reporter.step("cache", f"found {request.name!r} as an alias of {_found(record)}")
            return record, "alias"

        match = self.searcher.find(request)
        if match is not None:
            self.stats.search_hits += 1
            self.reporter.step(
                "search",
                f"matched {match.function.name!r} via {match.via} (score: {match.score:.4f})",
            )
            if match.function.id is not None:
                self.store.add_alias(
                    request.name, request.signature_text, request.tier, match.function.id
                )
            self.guard.forget(request)
            return match.function, "search"
        return None, ""

    def _generate(self, request: ScalarRequest) -> FunctionRecord:
        self.reporter.step("cache", "miss — generating via LLM...")
        spec = ScalarSpec(request, self.runtime)
        synthesizer = Synthesizer(self.model, self.reporter, self.config.max_attempts)
        synthesis = synthesizer.synthesize(spec, self.guard.take_tests(request))
        record = synthesis.record
        self.store.save(record, synthesis.tests)
        self.runtime.forget(record.id)
        self.stats.generated += 1
        self.reporter.step("store", f"saved function: {record.name!r} (tier: {record.tier})")
        return record

    def _run_scalar(self, record: FunctionRecord, args: list[Scalar]) -> list[Scalar]:
        loaded = self.runtime.load(record)
        if loaded.recompiled and record.id is not None:
            self._store_native_code(record, loaded)
        values = self.runtime.call_scalar(loaded, args)
        if record.id is not None:
            self.store.record_call(record.id)
        return values

    def _store_native_code(self, record: FunctionRecord, loaded: LoadedFunction) -> None:
        """Replace rejected or missing native code once, so later loads deserialise."""
        native, tag = self.runtime.serialize(CompiledModule(loaded.module, record.wasm))
        assert record.id is not None
        self.store.update_compiled(record.id, native, tag)
        record.compiled, record.compiled_tag = native, tag

    # -- library views -------------------------------------------------

    def list_functions(self) -> list[FunctionRecord]:
        return self.store.list_functions()

    def lookup(self, name: str) -> list[FunctionRecord]:
        """Return every function named ``name``; raises NotFoundError if there is none."""
        from .errors import NotFoundError

        records = self.store.find_by_name(name)
        if not records:
            raise NotFoundError(f"no function named {name!r} in the library; see .list")
        return records

    def summary(self, elapsed: float) -> str:
        s = self.stats
        return (
            f"{s.requests} requests, {s.llm_calls} LLM calls, {s.cache_hits} cache hits, "
            f"{s.search_hits} search hits, {elapsed:.2f} s"
        )


def _found(record: FunctionRecord) -> str:
    state = "verified" if record.verified else "unverified"
    tier = "" if record.tier == Tier.SCALAR else f" {record.tier}"
    return f"{record.name!r}{tier} (calls: {record.call_count}, {state})"


def _format_values(values: list[Scalar], kinds: tuple[str, ...]) -> str:
    if not values:
        return "(no result)"
    shown = [format_value(v, k) for v, k in zip(values, kinds, strict=False)]
    return shown[0] if len(shown) == 1 else "(" + ", ".join(shown) + ")"
