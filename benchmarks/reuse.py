"""Reuse benchmark: does search reuse the right stored function, and never a wrong one?

Run from the repository root:

    python benchmarks/reuse.py                 # reuse table and latency at 100, 10k, 100k
    python benchmarks/reuse.py --sizes 100     # smaller latency run
    python benchmarks/reuse.py --no-latency    # reuse table only

Two libraries of real WAT modules (benchmarks/reuse_library.py) are
compiled with wasmtime and stored in temporary SQLite files. Library A contains
one side of ten near-opposite pairs (add, max, double, floor, sin, ...),
library B the other side, and both contain thirteen other functions. Each
labelled case (benchmarks/reuse_cases.py) sends one request to one library
and compares the decision with the label: reuse function X, or generate.

The guard needs test cases written by a model for each request. Here a
deterministic oracle replaces the model. It computes the expected values with
a Python reference implementation of the requested job, on fixed inputs. So the figures "with guard" measure the search and the
guard with a model that writes correct tests; a real model that writes a
wrong expected value makes the guard reject a right candidate (lower recall),
never accept a wrong one that the correct tests reject.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qt45.embeddings import DEFAULT_EMBEDDING_MODEL, LazyEmbedder
from qt45.guard import TestGuard
from qt45.llm import ChatTask, Message
from qt45.report import Reporter
from qt45.request import ScalarRequest
from qt45.runtime import WasmRuntime
from qt45.search import HybridSearch, SearchQuery
from qt45.signature import Signature, Tier
from qt45.store import FunctionRecord, FunctionStore
from reuse_cases import CASES, Case
from reuse_library import INTENTS, LIBRARIES, Intent

MODES = ("keyword", "vector", "hybrid")


class OracleModel:
    """Writes test cases for one request from the reference implementation of its intent."""

    def __init__(self, intent: Intent) -> None:
        self.label = f"oracle for {intent.name}"
        self.calls = 0
        self.intent = intent

    def chat(self, messages: list[Message], task: ChatTask) -> str:
        if task.kind != "tests":
            raise AssertionError(f"the benchmark oracle only writes tests, not {task.kind}")
        self.calls += 1
        cases = [
            {"inputs": list(inputs), "expected": self.intent.reference(*inputs)}
            for inputs in self.intent.inputs
        ]
        return json.dumps(cases)


def build_library(path: Path, names: list[str], runtime: WasmRuntime) -> FunctionStore:
    """Compile and store the named intents in a new library file."""
    store = FunctionStore(path)
    for name in names:
        intent = INTENTS[name]
        compiled = runtime.compile(intent.wat())
        runtime.check_scalar(compiled, name, Signature.parse(intent.signature))
        record = FunctionRecord(
            name=name,
            signature=intent.signature,
            tier=Tier.SCALAR,
            description=intent.description,
            wat=intent.wat(),
            wasm=compiled.wasm,
            verified=True,
        )
        store.save(record, [])
    return store


@dataclass
class Outcome:
    """Decisions of one configuration over every case."""

    decisions: list[tuple[Case, str | None]] = field(default_factory=list)
    llm_calls: int = 0

    def reuses(self) -> list[tuple[Case, str | None]]:
        return [(case, got) for case, got in self.decisions if got is not None]

    def wrong(self) -> list[tuple[Case, str | None]]:
        return [(case, got) for case, got in self.reuses() if got != case.expected]

    def precision(self) -> float | None:
        reuses = self.reuses()
        if not reuses:
            return None
        return (len(reuses) - len(self.wrong())) / len(reuses)

    def recall(self, kinds: tuple[str, ...] | None = None) -> float:
        expected_reuses = [
            (case, got)
            for case, got in self.decisions
            if case.expected is not None and (kinds is None or case.kind in kinds)
        ]
        correct = sum(got == case.expected for case, got in expected_reuses)
        return correct / len(expected_reuses)


def run_configuration(
    searchers: dict[str, HybridSearch], runtime: WasmRuntime, guarded: bool
) -> Outcome:
    outcome = Outcome()
    for case in CASES:
        intent = INTENTS[case.intent]
        searcher = searchers[case.library]
        oracle = OracleModel(intent)
        searcher.guard = (
            TestGuard(lambda oracle=oracle: oracle, runtime, Reporter()) if guarded else None
        )
        request = ScalarRequest(case.name, case.description, Signature.parse(intent.signature), ())
        match = searcher.find(request)
        outcome.decisions.append((case, match.function.name if match else None))
        outcome.llm_calls += oracle.calls
    return outcome


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def reuse_table(stores: dict[str, FunctionStore], embedder: LazyEmbedder) -> list[Outcome]:
    runtime = WasmRuntime()
    rows = []
    outcomes = []
    print(
        "| search | guard | reuses | wrong reuses | precision | recall (all) | "
        "recall (paraphrase) | recall (naming) | guard LLM calls per search |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in MODES:
        searchers = {
            name: HybridSearch(store, embedder, None, Reporter(), mode=mode)
            for name, store in stores.items()
        }
        for guarded in (False, True):
            outcome = run_configuration(searchers, runtime, guarded)
            outcomes.append(outcome)
            calls = f"{outcome.llm_calls / len(CASES):.2f}" if guarded else "0"
            row = (
                f"| {mode} | {'yes' if guarded else 'no'} | {len(outcome.reuses())} | "
                f"{len(outcome.wrong())} | {_fmt(outcome.precision())} | {outcome.recall():.2f} | "
                f"{outcome.recall(('paraphrase',)):.2f} | {outcome.recall(('naming',)):.2f} | "
                f"{calls} |"
            )
            rows.append(row)
            print(row, flush=True)
    return outcomes


def describe_cases() -> None:
    kinds: dict[str, int] = {}
    for case in CASES:
        kinds[case.kind] = kinds.get(case.kind, 0) + 1
    reuse = sum(case.expected is not None for case in CASES)
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    print(
        f"{len(CASES)} cases ({summary}); {reuse} expect a reuse, {len(CASES) - reuse} a generation"
    )


def print_mistakes(outcome: Outcome, label: str) -> None:
    wrong = outcome.wrong()
    missed = [
        (case, got)
        for case, got in outcome.decisions
        if case.expected is not None and got != case.expected
    ]
    print(f"\n{label}: {len(wrong)} wrong reuses, {len(missed)} missed reuses")
    for case, got in wrong:
        print(f"  wrong: {case.library} {case.name!r} ({case.intent}) reused {got!r}")
    for case, got in missed:
        print(f"  missed: {case.library} {case.name!r} expected {case.expected!r}, got {got!r}")


# -- latency --------------------------------------------------------------

VERBS = [
    "add",
    "scale",
    "merge",
    "split",
    "count",
    "rotate",
    "clamp",
    "blend",
    "shift",
    "mirror",
    "score",
    "filter",
]
NOUNS = [
    "pixels",
    "vectors",
    "prices",
    "angles",
    "scores",
    "weights",
    "counts",
    "ranges",
    "tokens",
    "samples",
]
SIGNATURES = [
    "(i32, i32) -> i32",
    "(i32) -> i32",
    "(f64) -> f64",
    "(f64, f64) -> f64",
    "(i64, i64) -> i64",
    "(f32) -> f32",
    "(i32, i32, i32) -> i32",
    "() -> i32",
]


def fill_synthetic(store: FunctionStore, count: int, dimension: int, model_name: str) -> None:
    """Insert ``count`` functions with random unit vectors in bulk (no model run)."""
    import numpy as np

    from qt45.embeddings import embedding_text, text_hash

    rng = np.random.default_rng(45)
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = time.time()
    with store.write() as conn:
        for i in range(count):
            verb, noun = VERBS[i % len(VERBS)], NOUNS[(i // len(VERBS)) % len(NOUNS)]
            name = f"{verb}_{noun}_{i}"
            description = f"{verb}s the {noun} of batch {i}"
            conn.execute(
                "INSERT INTO functions (id, name, signature, tier, description, wat, wasm, "
                "created_at) VALUES (?, ?, ?, 'scalar', ?, '', x'', ?)",
                (i + 1, name, SIGNATURES[i % len(SIGNATURES)], description, now),
            )
            conn.execute(
                "INSERT INTO embeddings (function_id, model, dimension, text_hash, vector, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    i + 1,
                    model_name,
                    dimension,
                    text_hash(embedding_text(name, description)),
                    vectors[i].tobytes(),
                    now,
                ),
            )


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    yield box
    box.append(time.perf_counter() - start)


def latency(sizes: list[int], embedder: LazyEmbedder, repeats: int, folder: Path) -> None:
    model = embedder.get()
    assert model is not None, "latency needs the embedding model"
    print("\n| stored functions | vector KNN | p50 ms | p95 ms |")
    print("|---|---|---|---|")
    queries = [
        SearchQuery(case.name, case.description, "scalar", INTENTS[case.intent].signature)
        for case in CASES
    ][:repeats]
    for size in sizes:
        store = FunctionStore(folder / f"synthetic-{size}.db")
        fill_synthetic(store, size, model.dimension, model.name)
        for in_sqlite in (True, False):
            searcher = HybridSearch(store, embedder, None, Reporter(), use_sqlite_vec=in_sqlite)
            searcher.rank(queries[0])  # first search checks every stored vector once
            times = []
            for query in queries:
                with timed() as box:
                    searcher.rank(query)
                times.append(box[0] * 1000)
            p50 = statistics.median(times)
            p95 = statistics.quantiles(times, n=20)[-1]
            label = "sqlite-vec in SQLite" if in_sqlite else "numpy (fallback)"
            print(f"| {size:,} | {label} | {p50:.1f} | {p95:.1f} |", flush=True)
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000", help="library sizes for latency")
    parser.add_argument("--repeats", type=int, default=100, help="searches per latency size")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency part")
    parser.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL, help="embedding model")
    args = parser.parse_args()

    embedder = LazyEmbedder(args.model)
    with timed() as load:
        loaded = embedder.get()
    if loaded is None:
        print(f"embedding model unavailable: {embedder.error}")
        return 1
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'unknown cpu'}, python {platform.python_version()}"
    )
    print(f"embedding model: {loaded.name} (loaded in {load[0]:.2f} s, not counted below)")
    describe_cases()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runtime = WasmRuntime(key_path=folder / "module.key")
        stores = {
            name: build_library(folder / f"library-{name}.db", names, runtime)
            for name, names in LIBRARIES.items()
        }
        print()
        outcomes = reuse_table(stores, embedder)
        print_mistakes(outcomes[MODES.index("hybrid") * 2], "hybrid without guard")
        print_mistakes(outcomes[MODES.index("hybrid") * 2 + 1], "hybrid with guard")
        for store in stores.values():
            store.close()
        if not args.no_latency:
            sizes = [int(size) for size in args.sizes.split(",") if size]
            latency(sizes, embedder, args.repeats, folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
