"""Keyword search: turn request text into a safe FTS5 query and rank stored functions by BM25.

User text never reaches ``MATCH`` as written. It is split into words, each
word is wrapped in double quotes (an FTS5 string, where every character but
the quote itself is literal) and the words are joined with ``OR``. So
quotes, hyphens, colons, ``*``, parentheses, a leading minus and the words
AND, OR, NOT and NEAR are all searched as plain text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .store import FunctionStore, tier_filters

MAX_TERMS = 32
"""Longer requests are cut to their first 32 distinct words."""

NAME_WEIGHT = 5.0
DESCRIPTION_WEIGHT = 1.0
SIGNATURE_WEIGHT = 0.0
"""BM25 column weights: a word in the name counts five times one in the description.

The signature column is indexed so that free-text searches can find
``f64``, but a request's signature is matched structurally, never by words.
"""

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "compute",
        "computes",
        "calculate",
        "calculates",
        "find",
        "finds",
        "for",
        "from",
        "get",
        "gets",
        "given",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "one",
        "or",
        "return",
        "returns",
        "that",
        "the",
        "their",
        "them",
        "then",
        "this",
        "to",
        "two",
        "three",
        "value",
        "values",
        "with",
        "number",
        "numbers",
        "integer",
        "integers",
        "int",
        "float",
        "floats",
        "function",
    ]
)
"""Words too common in function descriptions to tell functions apart."""

ABBREVIATIONS = {
    "abs": "absolute",
    "avg": "average",
    "calc": "calculate",
    "cnt": "count",
    "deg": "degrees",
    "dec": "decrement",
    "dist": "distance",
    "div": "divide",
    "exp": "exponential",
    "fact": "factorial",
    "fib": "fibonacci",
    "gcd": "greatest common divisor",
    "hyp": "hypotenuse",
    "inc": "increment",
    "lcm": "least common multiple",
    "len": "length",
    "max": "maximum larger",
    "min": "minimum smaller",
    "mod": "modulo remainder",
    "mul": "multiply",
    "mult": "multiply",
    "neg": "negate",
    "pow": "power",
    "rad": "radians",
    "rem": "remainder",
    "sq": "square",
    "sqr": "square",
    "sqrt": "square root",
    "sub": "subtract",
    "temp": "temperature",
}
"""Common programming abbreviations and the words they stand for, added to the query."""

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_name(name: str) -> list[str]:
    """Split an identifier into lower-case words: ``isEven``, ``is_even`` and ``is-even`` give is, even."""
    words: list[str] = []
    for part in re.split(r"[^0-9A-Za-z]+", name):
        words.extend(match.group(0).lower() for match in _CAMEL.finditer(part))
    return words


def _words(text: str) -> list[str]:
    """Split free text into lower-case words of letters and digits, in any script."""
    normalized = unicodedata.normalize("NFKC", text)
    return [word.lower() for word in re.findall(r"\w+", normalized) if word.strip("_")]


def query_terms(name: str, description: str) -> list[str]:
    """Return the distinct words to search for: name parts, the joined name, description words.

    Each term is added with the expansion of a known abbreviation. Stop words
    and bare numbers (the 1 of "returns 1 if ...") are dropped, and at most
    MAX_TERMS terms are kept.
    """
    name_words = split_name(name)
    terms: list[str] = list(name_words)
    if len(name_words) > 1:
        terms.append("".join(name_words))
    for word in _words(name) + _words(description):
        terms.extend(word.split("_"))
    expanded: list[str] = []
    for term in terms:
        expanded.append(term)
        expanded.extend(ABBREVIATIONS.get(term, "").split())
    seen: dict[str, None] = {}
    for term in expanded:
        if term and not term.isdigit() and term not in STOPWORDS and term not in seen:
            seen[term] = None
    return list(seen)[:MAX_TERMS]


def quote_term(term: str) -> str:
    """Quote one term as an FTS5 string: wrap in double quotes, double any quote inside."""
    return '"' + term.replace('"', '""') + '"'


def match_expression(name: str, description: str = "") -> str | None:
    """Build the ``MATCH`` argument for a request, or None when no searchable word is left."""
    terms = query_terms(name, description)
    if not terms:
        return None
    return " OR ".join(quote_term(term) for term in terms)


@dataclass(frozen=True)
class KeywordHit:
    """One function found by keywords: its id and BM25 score (lower is better)."""

    function_id: int
    bm25: float


def keyword_search(
    store: FunctionStore,
    name: str,
    description: str = "",
    *,
    tier: str | None = None,
    signature: str | None = None,
    limit: int = 20,
) -> list[KeywordHit]:
    """Rank stored functions by BM25 against the request's words, best first.

    ``tier`` and ``signature``, when given, keep only functions with exactly
    that tier and signature.
    """
    expression = match_expression(name, description)
    if expression is None:
        return []
    filters, filter_bindings = tier_filters(tier, signature)
    bindings: list[object] = [expression, *filter_bindings, limit]
    rows = store.query(
        "SELECT f.id, bm25(functions_fts, ?, ?, ?) AS score "
        "FROM functions_fts JOIN functions AS f ON f.id = functions_fts.rowid "
        f"WHERE functions_fts MATCH ?{filters} ORDER BY score LIMIT ?",
        (NAME_WEIGHT, DESCRIPTION_WEIGHT, SIGNATURE_WEIGHT, *bindings),
    )
    return [KeywordHit(int(row[0]), float(row[1])) for row in rows]
