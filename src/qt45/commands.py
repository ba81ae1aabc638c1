"""Dot-commands of the REPL (.list, .info, .source, .tests, .delete, .search, .help)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .engine import Qt45
from .errors import ParseError, Qt45Error
from .parser import ARRAY_FORM, SCALAR_FORM, Command, parse_line
from .request import ArrayRequest, ScalarRequest, array_signature
from .search import Candidate, HybridSearch, SearchQuery
from .signature import Signature
from .store import FunctionRecord

HELP_ROWS = [
    (".list", "List stored functions with signature, calls, tier and verified flag"),
    (".info NAME", "Show a function's details: description, tier, times, aliases"),
    (".source NAME", "Print the WAT source"),
    (".tests NAME", "Show the stored test cases and their outcome"),
    (".shader NAME", "Print the WGSL shader of a GPU function"),
    (".bench NAME N", "Time a SIMD or GPU function on N pseudo-random elements"),
    (".delete NAME [SIGNATURE]", "Delete a function (every signature, or only one)"),
    (".search TEXT", "Rank stored functions for TEXT: keyword rank, vector distance, fused score"),
    (".help", "Show this help"),
    (".quit", "Exit (also Ctrl-D)"),
]

CommandHandler = Callable[[Qt45, Console, tuple[str, ...]], None]
COMMANDS: dict[str, CommandHandler] = {}


def command(name: str, *aliases: str) -> Callable[[CommandHandler], CommandHandler]:
    """Register a dot-command handler under ``name`` and its aliases."""

    def register(handler: CommandHandler) -> CommandHandler:
        for key in (name, *aliases):
            COMMANDS[key] = handler
        return handler

    return register


def run_command(lib: Qt45, console: Console, cmd: Command) -> None:
    """Run one dot-command; raises ParseError for an unknown command or missing argument."""
    handler = COMMANDS.get(cmd.name)
    if handler is None:
        known = " ".join(row[0].split()[0] for row in HELP_ROWS)
        raise ParseError(f"unknown command .{cmd.name}; known commands: {known}")
    handler(lib, console, cmd.args)


def _one_name(args: tuple[str, ...], usage: str) -> str:
    if len(args) != 1:
        raise ParseError(f"usage: {usage}")
    return args[0]


def library_table(records: list[FunctionRecord]) -> Table:
    """Build the table printed by .list and at the end of the demo."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "SIGNATURE"):
        table.add_column(column)
    table.add_column("CALLS", justify="right")
    table.add_column("TIER")
    table.add_column("VERIFIED")
    for record in records:
        table.add_row(
            record.name,
            record.signature,
            str(record.call_count),
            str(record.tier),
            "yes" if record.verified else "no",
        )
    return table


@command("list", "ls")
def _list(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    records = lib.list_functions()
    if not records:
        console.print("The library is empty. Request a function to add one; see .help.")
        return
    console.print(library_table(records))


def _time(value: float | None) -> str:
    if value is None:
        return "never"
    return dt.datetime.fromtimestamp(value).isoformat(sep=" ", timespec="seconds")


@command("info")
def _info(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    name = _one_name(args, ".info NAME")
    targets = lib.store.alias_targets(name)
    if targets and not lib.store.find_by_name(name):
        for alias_signature, target in targets:
            console.print(
                Text(f"{name!r} {alias_signature} is an alias of {target.name!r}", style="bold")
            )
        console.print()
        name = targets[0][1].name
    for record in lib.lookup(name):
        aliases = lib.store.aliases(record.id or -1)
        rows = [
            ("name", record.name),
            ("signature", record.signature),
            ("tier", str(record.tier)),
            ("description", record.description),
            ("verified", "yes" if record.verified else "no"),
            ("calls", str(record.call_count)),
            ("created", _time(record.created_at)),
            ("last used", _time(record.last_used_at)),
            ("aliases", ", ".join(aliases) if aliases else "none"),
            ("wasm size", f"{len(record.wasm)} bytes"),
        ]
        if record.shader:
            rows.append(("shader", f"{len(record.shader.encode())} bytes of WGSL; see .shader"))
        for key, value in rows:
            line = Text(f"{key:<12}", style="bold")
            line.append(value)
            console.print(line)
        console.print()


@command("source", "src")
def _source(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    name = _one_name(args, ".source NAME")
    for record in lib.lookup(name):
        console.print(Text(f";; {record.name} {record.signature} [{record.tier}]", style="dim"))
        console.print(Text(record.wat))


@command("tests")
def _tests(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    name = _one_name(args, ".tests NAME")
    for record in lib.lookup(name):
        cases = lib.store.tests(record.id or -1)
        console.print(
            Text(f"{record.name} {record.signature}: {len(cases)} test case(s)", style="bold")
        )
        for case in cases:
            mark = "pass" if case.passed else "FAIL"
            console.print(
                Text(
                    f"  {mark}  inputs {case.inputs} → expected {case.expected}, got {case.actual}"
                )
            )


@command("shader")
def _shader(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    name = _one_name(args, ".shader NAME")
    for record in lib.lookup(name):
        if not record.shader:
            console.print(
                Text(f"{record.name} {record.signature} is a {record.tier} function: no shader")
            )
            continue
        console.print(Text(f"// {record.name} {record.signature} [{record.tier}]", style="dim"))
        console.print(Text(record.shader.rstrip("\n")))


@command("bench")
def _bench(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    from .arraybench import bench  # numpy loads only when a benchmark runs

    if len(args) != 2:
        raise ParseError("usage: .bench NAME N, e.g. .bench vec_add_f32 1000000")
    name, count = args
    try:
        elements = int(count.replace("_", "").replace(",", ""))
    except ValueError as exc:
        raise ParseError(f"invalid element count {count!r}: expected an integer") from exc
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("NAME")
    table.add_column("TIER")
    for column in ("ELEMENTS", "RUNS", "MEDIAN", "ELEMENTS/S", "GB/S"):
        table.add_column(column, justify="right")
    for result in bench(lib, name, elements):
        table.add_row(
            result.name,
            str(result.tier),
            f"{result.elements:,}",
            str(result.runs),
            f"{result.median_s * 1000:.3f} ms",
            f"{result.elements_per_s:,.0f}",
            f"{result.gb_per_s:.2f}",
        )
    console.print(table)


@command("delete", "rm")
def _delete(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    if not args:
        raise ParseError("usage: .delete NAME [SIGNATURE]")
    name = args[0]
    signature = normalize_signature(" ".join(args[1:])) if len(args) > 1 else None
    for record in lib.store.find_by_name(name):
        lib.runtime.forget(record.id)
        lib.arrays.forget(record.id)
    deleted = lib.store.delete(name, signature)
    console.print(f"Deleted {deleted} function(s) named {name!r}.")


def normalize_signature(text: str) -> str:
    """Return the stored form of a scalar or array signature typed with any spacing."""
    compact = re.sub(r"\s+", "", text)
    array_form = re.fullmatch(r"\(((?:f32\[\],)*f32\[\])\)->f32\[\]", compact)
    if array_form:
        return array_signature(array_form.group(1).count("f32[]"))
    return str(Signature.parse(text))


def search_query(text: str) -> SearchQuery:
    """Read ``.search`` text: a request line searches its tier and signature, other text everything.

    Text with a quoted description followed by a signature or arrays is taken
    as a request line, so a typo in it raises ParseError instead of quietly
    searching the words.
    """
    looks_like_request = re.search(r'"[^"]*"\s*[(\[]', text) is not None
    try:
        parsed = parse_line(text)
    except Qt45Error:
        if looks_like_request:
            raise
        parsed = None
    if isinstance(parsed, ScalarRequest | ArrayRequest):
        return SearchQuery(parsed.name, parsed.description, str(parsed.tier), parsed.signature_text)
    return SearchQuery(text)


def candidates_table(candidates: list[Candidate]) -> Table:
    """Build the table printed by .search: one row per candidate, best first."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right")
    for column in ("NAME", "SIGNATURE", "TIER"):
        table.add_column(column, no_wrap=True)
    for column in ("KEYWORD", "DISTANCE", "SCORE"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("CANDIDATE")
    for position, candidate in enumerate(candidates, start=1):
        record = candidate.function
        table.add_row(
            str(position),
            record.name,
            record.signature,
            str(record.tier),
            "-" if candidate.keyword_rank is None else str(candidate.keyword_rank),
            "-" if candidate.distance is None else f"{candidate.distance:.3f}",
            f"{candidate.score:.4f}",
            "yes" if candidate.admitted else "no",
        )
    return table


@command("search", "find")
def _search(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    text = " ".join(args).strip()
    if not text:
        raise ParseError("usage: .search TEXT, e.g. .search adds two numbers, or a request line")
    searcher = lib.searcher
    if not isinstance(searcher, HybridSearch):
        raise Qt45Error(
            "this library was opened with a custom searcher; .search needs HybridSearch"
        )
    query = search_query(text)
    candidates = searcher.rank(query)
    console.print(Text(searcher.describe(), style="dim"))
    if not candidates:
        console.print("No stored function matches. Try other words, or see .list.")
        return
    console.print(candidates_table(candidates))
    console.print(
        Text(
            "KEYWORD: BM25 rank; DISTANCE: cosine distance of the embeddings; SCORE: "
            "reciprocal rank fusion. CANDIDATE yes: within the thresholds, so a request "
            "would run it against its test cases before reusing it.",
            style="dim",
        )
    )


@command("quit", "exit", "q")
def _quit(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    # The REPL ends its loop before it gets here; in qt45 -c there is nothing to end.
    return None


@command("help", "h", "?")
def _help(lib: Qt45, console: Console, args: tuple[str, ...]) -> None:
    console.print(Text("Requests:", style="bold"))
    console.print(Text(f"  {SCALAR_FORM}"))
    console.print(Text('  answer "returns 42" () -> i32'))
    console.print(Text(f"  {ARRAY_FORM}"))
    console.print(Text("Types: i32 i64 f32 f64. Commands:", style="bold"))
    width = max(len(usage) for usage, _ in HELP_ROWS) + 2
    for usage, description in HELP_ROWS:
        console.print(Text(f"  {usage:<{width}}{description}"))
