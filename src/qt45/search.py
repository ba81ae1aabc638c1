"""The search step of the request path: finding a stored function under another name.

``HybridSearch`` ranks stored functions of the request's tier and signature
twice, by BM25 over the words of name and description and by cosine distance
between embeddings, and fuses the two rankings with reciprocal rank fusion
(k = 60). The best candidates within the embedding model's distance
thresholds go to the reuse guard, which runs each against test cases written
for the request. The first candidate that passes them all is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .embeddings import LazyEmbedder, embedding_text
from .guard import TestGuard
from .keywords import keyword_search
from .report import Reporter
from .request import Request
from .store import FunctionRecord, FunctionStore
from .vectors import VectorHit, VectorIndex

RRF_K = 60
"""Reciprocal rank fusion constant: a function ranked r in a list scores 1 / (60 + r)."""
RANKING_DEPTH = 20
"""How many functions each ranking contributes to the fusion."""
MAX_CHECKED = 3
"""At most this many admitted candidates are run against the request's tests."""
KEYWORD_ONLY_DEPTH = 3
"""Without vectors, the top three keyword matches are the admitted candidates."""

MODES = ("hybrid", "keyword", "vector")


@dataclass
class SearchMatch:
    """A stored function judged to do the requested job."""

    function: FunctionRecord
    via: str
    """``keyword``, ``vector`` or ``both``."""
    score: float


class Searcher(Protocol):
    def find(self, request: Request) -> SearchMatch | None: ...


class ExactSearch:
    """A searcher that never proposes another function."""

    def find(self, request: Request) -> SearchMatch | None:
        return None


@dataclass(frozen=True)
class Thresholds:
    """Cosine-distance limits for one embedding model; distances of different models differ."""

    max_distance: float
    """A candidate this close is admitted on its vector alone."""
    corroborated_distance: float
    """A candidate this close is admitted when it also matches by keywords."""


THRESHOLDS = {
    "all-MiniLM-L6-v2": Thresholds(max_distance=0.55, corroborated_distance=0.65),
    "bge-small-en-v1.5": Thresholds(max_distance=0.30, corroborated_distance=0.36),
}
"""Chosen on the reuse benchmark (benchmarks/reuse.py) for MiniLM.

NOTE: the BGE values are a guess that has not been measured, because BGE
could not be downloaded where the thresholds were chosen. The guard keeps
wrong reuses out with any thresholds, but recall with BGE is unknown.
"""


@dataclass(frozen=True)
class SearchQuery:
    """A search request: text to match, and the ``tier`` and ``signature`` a match must have."""

    name: str
    description: str = ""
    tier: str | None = None
    signature: str | None = None


@dataclass
class Candidate:
    """One stored function in the fused ranking, with the evidence for it."""

    function: FunctionRecord
    score: float
    keyword_rank: int | None = None
    bm25: float | None = None
    vector_rank: int | None = None
    distance: float | None = None
    admitted: bool = False
    """Within the thresholds, so a reuse candidate (still subject to the guard)."""

    @property
    def via(self) -> str:
        if self.keyword_rank is not None and self.vector_rank is not None:
            return "both"
        return "keyword" if self.keyword_rank is not None else "vector"


def rrf_score(*ranks: int | None) -> float:
    """Return the reciprocal rank fusion score of one item from its 1-based ranks."""
    return sum(1.0 / (RRF_K + rank) for rank in ranks if rank is not None)


class HybridSearch:
    """Keyword and vector search over the library, fused, with the reuse guard on top.

    ``mode`` limits the evidence to ``keyword`` or ``vector``, so that the
    benchmark can compare them. Without a guard, the best admitted candidate
    is reused unchecked, which only the benchmark does.
    """

    def __init__(
        self,
        store: FunctionStore,
        embedder: LazyEmbedder | None,
        guard: TestGuard | None,
        reporter: Reporter | None = None,
        *,
        mode: str = "hybrid",
        use_sqlite_vec: bool = True,
        show_progress: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        self.store = store
        self.embedder = embedder
        self.guard = guard
        self.reporter = reporter or Reporter()
        self.mode = mode
        self.vectors = VectorIndex(
            store, use_sqlite_vec=use_sqlite_vec, show_progress=show_progress
        )
        self._reported_keyword_only = False

    def preload(self) -> None:
        """Start loading the embedding model in the background."""
        if self.embedder is not None and self.mode != "keyword":
            self.embedder.preload()

    def describe(self) -> str:
        """Return one line saying which evidence the search uses."""
        if self.mode == "keyword" or self.embedder is None:
            return "search: keywords (BM25) only"
        if self.embedder.get() is None:
            return (
                f"search: keywords (BM25) only; embedding model unavailable: {self.embedder.error}"
            )
        where = "sqlite-vec in SQLite" if self.vectors.in_sqlite else "numpy"
        thresholds = self.thresholds
        limits = (
            f", candidates within cosine distance {thresholds.max_distance:g} "
            f"({thresholds.corroborated_distance:g} with a keyword match)"
            if thresholds
            else ""
        )
        return (
            f"search: {self.mode}, BM25 + {self.embedder.name} vectors ({where}), "
            f"reciprocal rank fusion k={RRF_K}{limits}"
        )

    @property
    def thresholds(self) -> Thresholds | None:
        if self.embedder is None:
            return None
        return THRESHOLDS.get(self.embedder.name)

    # -- ranking -------------------------------------------------------

    def rank(self, query: SearchQuery) -> list[Candidate]:
        """Return the fused ranking of stored functions for ``query``, best first."""
        keyword_hits = []
        if self.mode != "vector":
            keyword_hits = keyword_search(
                self.store,
                query.name,
                query.description,
                tier=query.tier,
                signature=query.signature,
                limit=RANKING_DEPTH,
            )
        vector_hits = self._vector_hits(query)

        found: dict[int, _Evidence] = {}
        for rank, hit in enumerate(keyword_hits, start=1):
            evidence = found.setdefault(hit.function_id, _Evidence())
            evidence.keyword_rank, evidence.bm25 = rank, hit.bm25
        for rank, vector_hit in enumerate(vector_hits or [], start=1):
            evidence = found.setdefault(vector_hit.function_id, _Evidence())
            evidence.vector_rank, evidence.distance = rank, vector_hit.distance

        records = self.store.records(list(found))
        candidates = []
        for function_id, evidence in found.items():
            record = records.get(function_id)
            if record is None:
                continue
            candidate = Candidate(
                function=record,
                score=rrf_score(evidence.keyword_rank, evidence.vector_rank),
                keyword_rank=evidence.keyword_rank,
                bm25=evidence.bm25,
                vector_rank=evidence.vector_rank,
                distance=evidence.distance,
            )
            candidate.admitted = self._admits(candidate, vectors_used=vector_hits is not None)
            candidates.append(candidate)
        candidates.sort(key=_ranking_key)
        return candidates

    def _vector_hits(self, query: SearchQuery) -> list[VectorHit] | None:
        """Return the vector ranking, or None when vectors are not used or not available."""
        if self.mode == "keyword" or self.embedder is None:
            return None
        model = self.embedder.get()
        if model is None:
            self._say_keyword_only()
            return None
        self.vectors.sync(model)
        vector = model.embed([embedding_text(query.name, query.description)])[0]
        return self.vectors.nearest(
            model, vector, tier=query.tier, signature=query.signature, limit=RANKING_DEPTH
        )

    def _admits(self, candidate: Candidate, *, vectors_used: bool) -> bool:
        thresholds = self.thresholds
        if not vectors_used or thresholds is None:
            return (
                candidate.keyword_rank is not None and candidate.keyword_rank <= KEYWORD_ONLY_DEPTH
            )
        if candidate.distance is None:
            return False
        if candidate.distance <= thresholds.max_distance:
            return True
        corroborated = candidate.keyword_rank is not None
        return corroborated and candidate.distance <= thresholds.corroborated_distance

    def _say_keyword_only(self) -> None:
        if self._reported_keyword_only or self.embedder is None:
            return
        self._reported_keyword_only = True
        reason = self.embedder.error or "it did not load"
        self.reporter.step(
            "search",
            f"embedding model {self.embedder.name!r} unavailable, searching by keywords only: "
            f"{reason}",
        )

    # -- deciding ------------------------------------------------------

    def find(self, request: Request) -> SearchMatch | None:
        """Return a stored function that passes the request's tests, or None to generate."""
        if self.guard is not None and not self.guard.supports(request):
            return None
        query = SearchQuery(
            request.name, request.description, str(request.tier), request.signature_text
        )
        admitted = [c for c in self.rank(query) if c.admitted][:MAX_CHECKED]
        for candidate in admitted:
            if self.guard is None:
                return SearchMatch(candidate.function, candidate.via, candidate.score)
            verdict = self.guard.confirm(request, candidate.function)
            name = candidate.function.name
            if verdict.accepted:
                self.reporter.step(
                    "search",
                    f"{name!r} passed {verdict.passed}/{verdict.total} test cases written for "
                    f"{request.name!r}",
                )
                return SearchMatch(candidate.function, candidate.via, candidate.score)
            self.reporter.step(
                "search",
                f"rejected {name!r} (via {candidate.via}, score {candidate.score:.4f}): "
                f"{verdict.passed}/{verdict.total} test cases passed; {verdict.reason}",
            )
        return None


@dataclass
class _Evidence:
    keyword_rank: int | None = None
    bm25: float | None = None
    vector_rank: int | None = None
    distance: float | None = None


def _ranking_key(candidate: Candidate) -> tuple[float, float, float]:
    distance = candidate.distance if candidate.distance is not None else 2.0
    bm25 = candidate.bm25 if candidate.bm25 is not None else 0.0
    return (-candidate.score, distance, bm25)
