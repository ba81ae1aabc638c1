"""Hybrid search: FTS5 safety and sync, embeddings, fusion, the reuse guard, aliases, .search."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from conftest import make_config
from fakeserver import FakeLlmServer
from qt45 import FunctionRecord, FunctionStore, Qt45, Reporter, ScalarRequest, Signature, Tier
from qt45.commands import run_command
from qt45.embeddings import LazyEmbedder, embedding_text, load_embedding_model, text_hash
from qt45.keywords import keyword_search, match_expression, query_terms, split_name
from qt45.migrations import APPLICATION_ID, MIGRATIONS, schema_version
from qt45.parser import Command
from qt45.runtime import WasmRuntime
from qt45.search import HybridSearch, SearchQuery, rrf_score
from qt45.vectors import VectorIndex

I32_PAIR = "(i32, i32) -> i32"
I32_ONE = "(i32) -> i32"
F64_ONE = "(f64) -> f64"

MODULES = {
    "add": (I32_PAIR, "adds two integers", "(i32.add (local.get 0) (local.get 1))"),
    "subtract": (
        I32_PAIR,
        "subtracts the second integer from the first",
        "(i32.sub (local.get 0) (local.get 1))",
    ),
    "max": (
        I32_PAIR,
        "returns the larger of two integers",
        "(select (local.get 0) (local.get 1) (i32.gt_s (local.get 0) (local.get 1)))",
    ),
    "min": (
        I32_PAIR,
        "returns the smaller of two integers",
        "(select (local.get 0) (local.get 1) (i32.lt_s (local.get 0) (local.get 1)))",
    ),
    "double": (I32_ONE, "multiplies an integer by two", "(i32.mul (local.get 0) (i32.const 2))"),
    "triple": (I32_ONE, "multiplies an integer by three", "(i32.mul (local.get 0) (i32.const 3))"),
    "is_even": (
        I32_ONE,
        "returns 1 if the integer is even, else 0",
        "(i32.eqz (i32.and (local.get 0) (i32.const 1)))",
    ),
    "is_odd": (
        I32_ONE,
        "returns 1 if the integer is odd, else 0",
        "(i32.and (local.get 0) (i32.const 1))",
    ),
    "floor": (F64_ONE, "rounds a number down to an integer", "(f64.floor (local.get 0))"),
    "ceil": (F64_ONE, "rounds a number up to an integer", "(f64.ceil (local.get 0))"),
}
TESTS = {
    "add": "[[[7, 3], 10], [[-4, 9], 5], [[0, 5], 5]]",
    "subtract": "[[[7, 3], 4], [[-4, 9], -13], [[0, 5], -5]]",
    "max": "[[[7, 3], 7], [[-4, 9], 9], [[0, 5], 5]]",
    "min": "[[[7, 3], 3], [[-4, 9], -4], [[0, 5], 0]]",
    "double": "[[[5], 10], [[-8], -16], [[0], 0]]",
    "triple": "[[[5], 15], [[-8], -24], [[0], 0]]",
    "is_even": "[[[4], 1], [[9], 0], [[0], 1], [[-3], 0]]",
    "is_odd": "[[[4], 0], [[9], 1], [[0], 0], [[-3], 1]]",
    "floor": "[[[1.5], 1.0], [[-1.5], -2.0], [[2.0], 2.0]]",
    "ceil": "[[[1.5], 2.0], [[-1.5], -1.0], [[2.0], 2.0]]",
}
NEAR_OPPOSITES = [
    ("add", "subtract"),
    ("subtract", "add"),
    ("max", "min"),
    ("min", "max"),
    ("double", "triple"),
    ("is_even", "is_odd"),
    ("is_odd", "is_even"),
    ("floor", "ceil"),
    ("ceil", "floor"),
]
NASTY_TEXTS = [
    "",
    " ",
    '"',
    '""',
    'say "hi',
    "x-y",
    "-leading",
    "a.b.c",
    "name:value",
    "*",
    "add*",
    "(",
    "()",
    "a AND b",
    "OR",
    "NOT add",
    "NEAR(a b)",
    "add OR",
    "^start",
    "über straße",
    "数字を足す",
    "emoji 😀 sum",
    "\x00",
    "' OR 1=1 --",
    "col:add",
    "{name}: add",
    "+",
]


def wat(name: str) -> str:
    signature, _, body = MODULES[name]
    params, results = signature.split(" -> ")
    param_types = " ".join(part.strip() for part in params.strip("()").split(",") if part.strip())
    return f'(module (func (export "{name}") (param {param_types}) (result {results}) {body}))'


def store_function(store: FunctionStore, name: str, stored_as: str | None = None) -> int:
    """Compile a module from MODULES and save it, optionally under another export name."""
    signature, description, _ = MODULES[name]
    runtime = WasmRuntime(key_path=store.path.parent / "module.key")
    source = wat(name) if stored_as is None else wat(name).replace(f'"{name}"', f'"{stored_as}"')
    compiled = runtime.compile(source)
    record = FunctionRecord(
        name=stored_as or name,
        signature=signature,
        tier=Tier.SCALAR,
        description=description,
        wat=source,
        wasm=compiled.wasm,
        verified=True,
    )
    return store.save(record, [])


def open_lib(db_path: Path, server: FakeLlmServer, **overrides: object) -> Qt45:
    return Qt45(make_config(db_path, server.url, **overrides), reporter=Reporter())


# -- keyword query building ----------------------------------------------


def test_split_name_handles_naming_styles() -> None:
    assert split_name("isEven") == ["is", "even"]
    assert split_name("is_even") == ["is", "even"]
    assert split_name("HTTPServer2") == ["http", "server", "2"]
    assert split_name("deg2rad") == ["deg", "2", "rad"]


def test_query_terms_expand_abbreviations_and_drop_stopwords() -> None:
    terms = query_terms("sqrt", "returns the square root of a number")
    assert "sqrt" in terms
    assert "square" in terms
    assert "root" in terms
    assert "the" not in terms
    assert "returns" not in terms


def test_query_terms_include_joined_name() -> None:
    assert "iseven" in query_terms("is_even", "")


@pytest.mark.parametrize("text", NASTY_TEXTS)
def test_keyword_search_accepts_nasty_text(db_path: Path, text: str) -> None:
    store = FunctionStore(db_path)
    store_function(store, "add")
    keyword_search(store, text, text)
    store.close()


def test_match_expression_quotes_every_term() -> None:
    expression = match_expression('a "b" NOT', "c-d")
    assert expression is not None
    for part in expression.split(" OR "):
        assert part.startswith('"')
        assert part.endswith('"')


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=40), description=st.text(max_size=80))
def test_keyword_search_never_raises(
    tmp_path_factory: pytest.TempPathFactory, name: str, description: str
) -> None:
    store = _fuzz_store(tmp_path_factory)
    hits = keyword_search(store, name, description)
    assert all(hit.function_id > 0 for hit in hits)


_FUZZ_STORES: dict[str, FunctionStore] = {}


def _fuzz_store(factory: pytest.TempPathFactory) -> FunctionStore:
    store = _FUZZ_STORES.get("store")
    if store is None:
        store = FunctionStore(factory.mktemp("fuzz") / "library.db")
        for name in ("add", "max", "is_even"):
            store_function(store, name)
        _FUZZ_STORES["store"] = store
    return store


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=60))
def test_hybrid_rank_never_raises(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    store = _fuzz_store(tmp_path_factory)
    searcher = HybridSearch(store, LazyEmbedder("all-MiniLM-L6-v2"), None)
    for candidate in searcher.rank(SearchQuery(text, text)):
        assert candidate.score > 0


# -- FTS index kept in sync ------------------------------------------------


def test_fts_follows_save_replace_delete(db_path: Path) -> None:
    store = FunctionStore(db_path)
    store_function(store, "add")
    assert len(keyword_search(store, "add")) == 1

    record = store.get("add", I32_PAIR, Tier.SCALAR)
    assert record is not None
    record.description = "sums a pair of integers"
    store.save(record, [])
    assert len(keyword_search(store, "pair")) == 1
    assert keyword_search(store, "two integers") == []

    store.delete("add")
    assert keyword_search(store, "add") == []
    assert keyword_search(store, "pair") == []
    store.close()


def test_fts_row_rolls_back_with_function(db_path: Path) -> None:
    store = FunctionStore(db_path)
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute(
            "INSERT INTO functions (name, signature, tier, description, wat, wasm, created_at) "
            "VALUES ('ghost', '() -> i32', 'scalar', 'never stored', '', x'', 0)"
        )
        raise RuntimeError("abort the transaction")
    assert keyword_search(store, "ghost") == []
    assert store.query("SELECT count(*) FROM functions_fts")[0][0] == 0
    store.close()


def test_keyword_search_filters_tier_and_signature(db_path: Path) -> None:
    store = FunctionStore(db_path)
    store_function(store, "add")
    assert keyword_search(store, "add", signature="(i64, i64) -> i64") == []
    assert keyword_search(store, "add", tier="simd") == []
    assert len(keyword_search(store, "add", tier="scalar", signature=I32_PAIR)) == 1
    store.close()


# -- migration from a version-1 file -----------------------------------------


def make_v1_library(path: Path) -> None:
    conn = apsw.Connection(str(path))
    conn.execute("BEGIN")
    MIGRATIONS[0](conn)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    runtime = WasmRuntime(key_path=path.parent / "module.key")
    compiled = runtime.compile(wat("add"))
    conn.execute(
        "INSERT INTO functions (name, signature, tier, description, wat, wasm, created_at, "
        "verified) VALUES ('add', ?, 'scalar', 'adds two integers', ?, ?, 0, 1)",
        (I32_PAIR, wat("add"), compiled.wasm),
    )
    conn.execute("COMMIT")
    conn.close()


def test_v1_file_is_migrated_and_backfilled(db_path: Path) -> None:
    make_v1_library(db_path)
    store = FunctionStore(db_path)

    assert store.query("PRAGMA user_version")[0][0] == schema_version()
    assert len(keyword_search(store, "sum", "adds two numbers")) == 1
    assert store.query("SELECT count(*) FROM embeddings")[0][0] == 0

    searcher = HybridSearch(store, LazyEmbedder("all-MiniLM-L6-v2"), None)
    candidates = searcher.rank(SearchQuery("sum", "adds two numbers together", "scalar", I32_PAIR))
    assert [c.function.name for c in candidates] == ["add"]
    assert candidates[0].via == "both"
    rows = store.query("SELECT model, dimension, text_hash FROM embeddings")
    assert rows == [
        ("all-MiniLM-L6-v2", 384, text_hash(embedding_text("add", "adds two integers")))
    ]
    store.close()


# -- embeddings --------------------------------------------------------------


class RenamedModel:
    """The packaged MiniLM under another name, to act as a second embedding model."""

    def __init__(self, name: str) -> None:
        self.inner = load_embedding_model("all-MiniLM-L6-v2")
        self.name = name
        self.dimension = self.inner.dimension
        self.texts = 0

    def embed(self, texts: list[str]):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        return self.inner.embed(texts)


def test_unchanged_text_is_not_embedded_again(db_path: Path) -> None:
    store = FunctionStore(db_path)
    store_function(store, "add")
    model = RenamedModel("minilm-a")
    index = VectorIndex(store)
    index.sync(model)
    assert model.texts == 1

    VectorIndex(store).sync(model)
    assert model.texts == 1

    record = store.get("add", I32_PAIR, Tier.SCALAR)
    assert record is not None
    store.delete("add")
    record.id = None
    store.save(record, [])  # stored again after a delete: new row id, same text
    index.sync(model)
    assert model.texts == 1
    assert index.reused == 1
    assert store.query("SELECT count(*) FROM embeddings")[0][0] == 1
    store.close()


def test_model_change_embeds_again(db_path: Path) -> None:
    store = FunctionStore(db_path)
    store_function(store, "add")
    store_function(store, "max")
    first, second = RenamedModel("minilm-a"), RenamedModel("minilm-b")
    index = VectorIndex(store)
    index.sync(first)
    index.sync(second)
    assert second.texts == 2
    models = store.query("SELECT model, count(*) FROM embeddings GROUP BY model ORDER BY model")
    assert models == [("minilm-a", 2), ("minilm-b", 2)]
    store.close()


def test_changed_description_is_embedded_again(db_path: Path) -> None:
    store = FunctionStore(db_path)
    store_function(store, "add")
    model = RenamedModel("minilm-a")
    VectorIndex(store).sync(model)
    with store.write() as conn:
        conn.execute("UPDATE functions SET description = 'sums two integers'")
    VectorIndex(store).sync(model)
    assert model.texts == 2
    store.close()


def test_sqlite_vec_and_numpy_agree(db_path: Path) -> None:
    store = FunctionStore(db_path)
    for name in ("add", "subtract", "max", "min"):
        store_function(store, name)
    model = load_embedding_model("all-MiniLM-L6-v2")
    query = model.embed([embedding_text("sum", "adds two numbers together")])[0]
    in_sqlite = VectorIndex(store, use_sqlite_vec=True)
    in_numpy = VectorIndex(store, use_sqlite_vec=False)
    assert in_sqlite.in_sqlite
    in_sqlite.sync(model)
    hits_sqlite = in_sqlite.nearest(model, query, tier="scalar", signature=I32_PAIR)
    hits_numpy = in_numpy.nearest(model, query, tier="scalar", signature=I32_PAIR)
    assert [hit.function_id for hit in hits_sqlite] == [hit.function_id for hit in hits_numpy]
    assert hits_sqlite[0].distance == pytest.approx(hits_numpy[0].distance, abs=1e-5)
    assert store.records([hits_sqlite[0].function_id])[hits_sqlite[0].function_id].name == "add"
    store.close()


def test_import_does_not_load_the_model() -> None:
    code = "import sys, qt45; print('onnxruntime' in sys.modules, 'tokenizers' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.split() == ["False", "False"]


# -- fusion and the request path -----------------------------------------------


def test_rrf_score_of_first_in_both_lists() -> None:
    assert rrf_score(1, 1) == pytest.approx(2 / 61)
    assert f"{rrf_score(1, 1):.4f}" == "0.0328"
    assert rrf_score(None, 3) == pytest.approx(1 / 63)


def test_sum_served_by_add_then_alias(db_path: Path, fake_server: FakeLlmServer) -> None:
    with open_lib(db_path, fake_server) as lib:
        store_function(lib.store, "add")
        fake_server.push("[[[7, 8], 15], [[-1, 1], 0], [[0, 0], 0]]")

        first = lib.call("sum", "adds two numbers together", I32_PAIR, 7, 8)
        assert first.value == 15
        assert first.source == "search"
        assert first.function.name == "add"
        assert first.llm_calls == 1
        assert lib.guard.llm_calls == 1
        assert "  [search] matched 'add' via both (score: 0.0328)" in lib.reporter.lines

        second = lib.call("sum", "adds two numbers together", I32_PAIR, 1, 2)
        assert second.value == 3
        assert second.source == "alias"
        assert second.llm_calls == 0
        assert lib.store.aliases(first.function.id or -1) == ["sum"]
        assert len(fake_server.requests) == 1


@pytest.mark.parametrize(("stored", "requested"), NEAR_OPPOSITES)
def test_near_opposite_is_not_reused(
    db_path: Path, fake_server: FakeLlmServer, stored: str, requested: str
) -> None:
    with open_lib(db_path, fake_server) as lib:
        function_id = store_function(lib.store, stored)
        signature, description, _ = MODULES[requested]
        request = ScalarRequest(f"my_{requested}", description, Signature.parse(signature), ())
        fake_server.push(TESTS[requested])

        assert lib.searcher.find(request) is None
        record = lib.store.get_by_id(function_id)
        assert record is not None
        verdict = lib.guard.confirm(request, record)
        assert not verdict.accepted
        assert verdict.passed < verdict.total
        assert lib.guard.llm_calls == 1


@pytest.mark.parametrize("name", sorted(MODULES))
def test_same_job_under_other_name_is_reused(
    db_path: Path, fake_server: FakeLlmServer, name: str
) -> None:
    with open_lib(db_path, fake_server) as lib:
        store_function(lib.store, name)
        signature, description, _ = MODULES[name]
        fake_server.push(TESTS[name])
        request = ScalarRequest(f"my_{name}", description, Signature.parse(signature), ())
        match = lib.searcher.find(request)
        assert match is not None
        assert match.function.name == name


def test_rejected_reuse_generation_reuses_tests(db_path: Path, fake_server: FakeLlmServer) -> None:
    with open_lib(db_path, fake_server) as lib:
        store_function(lib.store, "max")
        fake_server.push(
            TESTS["min"],
            '(module (func (export "minimum") (param i32 i32) (result i32) '
            "(select (local.get 0) (local.get 1) (i32.lt_s (local.get 0) (local.get 1)))))",
        )
        result = lib.call("minimum", "returns the lesser of two integers", I32_PAIR, 4, 9)

        assert any("rejected 'max'" in line for line in lib.reporter.lines)
        assert result.value == 4
        assert result.source == "generated"
        assert result.verified
        assert result.llm_calls == 2
        assert len(lib.store.tests(result.function.id or -1)) == 3
        assert lib.store.aliases(lib.store.find_by_name("max")[0].id or -1) == []


def test_other_signature_is_never_a_candidate(db_path: Path, fake_server: FakeLlmServer) -> None:
    with open_lib(db_path, fake_server) as lib:
        store_function(lib.store, "add")
        query = SearchQuery("sum", "adds two numbers", "scalar", "(i64, i64) -> i64")
        assert lib.searcher.rank(query) == []  # type: ignore[attr-defined]
        assert lib.searcher.rank(SearchQuery("sum", "adds", "simd", I32_PAIR)) == []  # type: ignore[attr-defined]


def test_keyword_only_without_model_says_so_once(db_path: Path, fake_server: FakeLlmServer) -> None:
    with open_lib(db_path, fake_server, embedding_model="none") as lib:
        store_function(lib.store, "add")
        fake_server.push("[[[7, 8], 15], [[-1, 1], 0], [[0, 0], 0]]")
        result = lib.call("sum", "adds two numbers together", I32_PAIR, 7, 8)
        assert result.source == "search"
        notes = [line for line in lib.reporter.lines if "keywords only" in line]
        assert len(notes) == 1
        assert "via keyword" in lib.reporter.lines[-2]


def test_unreachable_hub_model_falls_back(
    db_path: Path, fake_server: FakeLlmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with open_lib(db_path, fake_server, embedding_model="bge-small-en-v1.5") as lib:
        store_function(lib.store, "add")
        query = SearchQuery("sum", "adds two numbers", "scalar", I32_PAIR)
        lib.searcher.rank(query)  # type: ignore[attr-defined]
        lib.searcher.rank(query)  # type: ignore[attr-defined]
        notes = [line for line in lib.reporter.lines if "keywords only" in line]
        assert len(notes) == 1
        assert "bge-small-en-v1.5" in notes[0]
        assert "all-MiniLM-L6-v2" in notes[0]


# -- .search and .info ---------------------------------------------------------


def run_dot(lib: Qt45, line: str) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, highlight=False)
    name, *args = line[1:].split()
    run_command(lib, console, Command(name, tuple(args)))
    return buffer.getvalue()


def test_search_command_shows_evidence(db_path: Path, fake_server: FakeLlmServer) -> None:
    with open_lib(db_path, fake_server) as lib:
        store_function(lib.store, "add")
        store_function(lib.store, "max")
        output = run_dot(lib, ".search sum adds two numbers")
        rows = [line.split() for line in output.splitlines()]
        add_row = next(row for row in rows if len(row) > 1 and row[1] == "add")
        assert add_row[0] == "1"
        assert "KEYWORD" in output
        assert "DISTANCE" in output
        assert "SCORE" in output
        assert "all-MiniLM-L6-v2" in output
        assert add_row[-1] == "yes"


def test_search_command_with_request_line(db_path: Path, fake_server: FakeLlmServer) -> None:
    with open_lib(db_path, fake_server) as lib:
        store_function(lib.store, "add")
        store_function(lib.store, "double")
        output = run_dot(lib, '.search sum "adds two numbers" (i32, i32) -> i32')
        assert " add " in output
        assert "double" not in output


@pytest.mark.parametrize("text", ['"', "NOT", "-x", "*", "(a", "数字"])
def test_search_command_accepts_any_text(
    db_path: Path, fake_server: FakeLlmServer, text: str
) -> None:
    with open_lib(db_path, fake_server) as lib:
        store_function(lib.store, "add")
        run_dot(lib, f".search {text}")


def test_info_lists_aliases(db_path: Path, fake_server: FakeLlmServer) -> None:
    with open_lib(db_path, fake_server) as lib:
        function_id = store_function(lib.store, "add")
        lib.store.add_alias("sum", I32_PAIR, Tier.SCALAR, function_id)
        output = run_dot(lib, ".info add")
        assert any(line.split() == ["aliases", "sum"] for line in output.splitlines())
