"""Qt45: the request path that serves a function from the library or has it written."""

from __future__ import annotations

import atexit
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .chat import ChatModel
from .config import Config
from .errors import ArgumentError, Qt45Error
from .handle import ScalarFunction
from .report import Reporter
from .request import ArrayRequest, CallResult, Request, ScalarRequest
from .runtime import CompiledModule, LoadedFunction, WasmRuntime
from .scripted import ScriptedModel
from .signature import Scalar, Signature, Tier, convert_arguments, format_value
from .store import FunctionRecord, FunctionStore

if TYPE_CHECKING:
    # Search, generation and the array tiers load on first use, so that a cache
    # hit (and qt45 -c) starts quickly: the array tiers import numpy, the GPU
    # tier wgpu, and search the embedding model.
    from .arrayhandle import ArrayFunction
    from .embeddings import LazyEmbedder
    from .gpu import GpuContext
    from .guard import TestGuard
    from .search import Searcher
    from .synth import TierSpec
    from .tiers import ArrayTiers


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
        self._embedder: LazyEmbedder | None = None
        self._guard: TestGuard | None = None
        self._searcher: Searcher | None = searcher
        self._model = model
        self._gpu: GpuContext | None = None
        self._arrays: ArrayTiers | None = None
        self.stats = Stats()
        self._closed = False
        atexit.register(self.close)

    # -- components created on first use ---------------------------------

    @property
    def embedder(self) -> LazyEmbedder:
        """The embedding model of the search (itself loaded lazily)."""
        if self._embedder is None:
            from .embeddings import LazyEmbedder

            self._embedder = LazyEmbedder(self.config.embedding_model)
        return self._embedder

    @property
    def guard(self) -> TestGuard:
        """The reuse guard: runs a search candidate against test cases for the request."""
        if self._guard is None:
            from .guard import TestGuard

            self._guard = TestGuard(lambda: self.model, self.runtime, self.reporter)
        return self._guard

    @property
    def searcher(self) -> Searcher:
        """The search step of the request path (hybrid search unless one was passed in)."""
        if self._searcher is None:
            from .search import HybridSearch

            self._searcher = HybridSearch(
                self.store,
                self.embedder,
                self.guard,
                self.reporter,
                show_progress=self.config.show_progress,
            )
        return self._searcher

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
        close_model = getattr(self._model, "close", None)
        if close_model is not None:
            close_model()

    @property
    def model(self) -> ChatModel:
        """The chat model, created on first use from the configuration."""
        if self._model is None:
            if self.config.llm == "scripted":
                self._model = ScriptedModel(self.config.llm_url)
            else:
                from .llm import LlmClient

                progress = self.reporter if self.config.show_progress else None
                self._model = LlmClient(self.config, progress=progress)
        return self._model

    def use_model(self, model: ChatModel) -> None:
        """Replace the chat model for later requests (the LLM call count restarts)."""
        self._model = model

    def warm_up(self) -> None:
        """Start loading the search's embedding model in the background."""
        preload = getattr(self.searcher, "preload", None)
        if callable(preload):
            preload()

    @property
    def arrays(self) -> ArrayTiers:
        """The SIMD and GPU tiers, created on first use."""
        if self._arrays is None:
            from .tiers import ArrayTiers

            # Array calls are bounded by the wall-clock deadline, not by fuel.
            array_runtime = WasmRuntime(
                self.config.limits, self.config.key_path, consume_fuel=False
            )
            self._arrays = ArrayTiers(array_runtime, self.store, self.gpu_context)
        return self._arrays

    def gpu_context(self) -> GpuContext:
        """Return the GPU context, opening it on first use; raises GpuUnavailable without an adapter.

        A context abandoned after GPU work outlived its time limit is replaced;
        see ``gpu.shared_context``.
        """
        if self._gpu is None or not self._gpu.usable:
            from .gpu import shared_context

            first = self._gpu is None
            self._gpu = shared_context(self.config.limits.gpu_timeout_s)
            if first:
                self.reporter.step("gpu", f"adapter: {self._gpu.adapter.describe()}")
        return self._gpu

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

    def function(self, name: str, description: str, signature: str | Signature) -> ScalarFunction:
        """Return a callable handle for a scalar function, generating it if needed.

        The lookup (and any generation) happens once. Calls on the handle
        skip the request path, so they are the cheapest way to call a
        function many times from Python.
        """
        if isinstance(signature, str):
            signature = Signature.parse(signature)
        request = ScalarRequest(name, description, signature)
        self.reporter.request(f"Request: {name} ({description}) {signature}")
        record, _ = self.find(request)
        if record is None:
            record = self._generate(self._scalar_spec(request))
        loaded = self._load_scalar(record)
        return ScalarFunction(record, loaded, self.runtime, self.store)

    def call_array(self, tier: Tier | str, name: str, description: str, *inputs: Any) -> CallResult:
        """Request a SIMD or GPU array function and call it on ``inputs``.

        Each input is a list or numpy array of numbers, all of one length. The
        result's ``value`` is a numpy float32 array of that length. Raises a
        Qt45Error subclass as ``call`` does, and GpuUnavailable for the GPU tier
        on a machine with no adapter.
        """
        if tier not in (Tier.SIMD, Tier.GPU, "simd", "gpu"):
            raise ArgumentError(f"invalid array tier {tier!r}: use 'simd' or 'gpu'")
        return self.request(ArrayRequest(Tier(tier), name, description, tuple(inputs)))

    def array_function(self, name: str, description: str, inputs: int = 1) -> ArrayFunction:
        """Return a handle for a SIMD function of ``inputs`` arrays, generating it if needed.

        The handle keeps one instance and lets arrays live in its linear
        memory (see ArrayFunction), which is the cheapest way to run a SIMD
        function many times on large arrays.
        """
        from .arrayhandle import ArrayFunction

        if inputs < 1:
            raise ArgumentError(f"an array function takes at least one input, got {inputs}")
        request = ArrayRequest(Tier.SIMD, name, description, tuple(() for _ in range(inputs)))
        self.reporter.request(request.describe())
        record, _ = self.find(request)
        if record is None:
            record = self._generate(self.arrays.spec(request))
        loaded = self.arrays.load(record)
        return ArrayFunction(record, loaded.module, inputs, self.arrays.runtime, self.store)

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
            record = self._generate(self._scalar_spec(request))
            source = "generated"
        values = self._run_scalar(record, args)
        result_text = _format_values(values, request.signature.results)
        suffix = "" if record.verified else " (unverified)"
        self.reporter.step("wasm", f"{result_text}{suffix}")
        return CallResult(values, record, source, record.verified)

    def _request_array(self, request: ArrayRequest) -> CallResult:
        from .arrays import format_array, to_f32_arrays

        if request.tier == Tier.GPU:
            self.gpu_context()
        self.reporter.request(request.describe())
        inputs = to_f32_arrays(request.inputs)
        record, source = self.find(request)
        if record is None:
            record = self._generate(self.arrays.spec(request))
            source = "generated"
        values = self.arrays.run(record, inputs)
        if record.id is not None:
            self.store.record_call(record.id)
        suffix = "" if record.verified else " (unverified)"
        self.reporter.step(str(record.tier), f"{format_array(values)}{suffix}")
        return CallResult([values], record, source, record.verified)

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

    def _scalar_spec(self, request: ScalarRequest) -> TierSpec:
        from .scalar import ScalarSpec

        return ScalarSpec(request, self.runtime)

    def _generate(self, spec: TierSpec) -> FunctionRecord:
        tier_name = f"{spec.label.upper()} " if spec.label else ""
        self.reporter.step("cache", f"miss — generating {tier_name}via LLM...")
        from .synth import Synthesizer

        synthesizer = Synthesizer(self.model, self.reporter, self.config.max_attempts)
        synthesis = synthesizer.synthesize(spec, self.guard.take_tests(spec.request))
        record = synthesis.record
        function_id = self.store.save(record, synthesis.tests)
        # Another process may have stored this function meanwhile; serve what the library holds.
        record = self.store.get_by_id(function_id) or record
        self.runtime.forget(record.id)
        if self._arrays is not None:
            self._arrays.forget(record.id)
        self.stats.generated += 1
        self.reporter.step("store", f"saved function: {record.name!r} (tier: {record.tier})")
        return record

    def _load_scalar(self, record: FunctionRecord) -> LoadedFunction:
        loaded = self.runtime.load(record)
        if loaded.recompiled and not loaded.native_saved and record.id is not None:
            self._store_native_code(record, loaded)
            loaded.native_saved = True
        return loaded

    def _run_scalar(self, record: FunctionRecord, args: list[Scalar]) -> list[Scalar]:
        loaded = self._load_scalar(record)
        handle = loaded.extra.get("handle")
        if handle is None:
            # The handle's specialised call is the fastest way into the module.
            handle = loaded.extra["handle"] = ScalarFunction(
                record, loaded, self.runtime, self.store
            )
        result = handle(*args)
        if isinstance(result, tuple):
            return list(result)
        return [] if result is None else [result]

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
    texts = [format_value(v, k) for v, k in zip(values, kinds, strict=False)]
    if len(texts) == 1:
        return texts[0]
    return "(" + ", ".join(texts) + ")"
