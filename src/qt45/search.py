"""The search step of the request path: finding a stored function under another name.

Until hybrid search is in place, ``ExactSearch`` finds nothing beyond the
exact name, signature and tier lookup that the engine does first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .request import Request
from .store import FunctionRecord


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
