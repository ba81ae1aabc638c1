"""Embedding vectors in the library file: keeping them in step with functions, and KNN.

Vectors live in the ``embeddings`` table of the same SQLite file, one row per
function and model, with the model's dimension and a SHA-256 of the embedded
text. Nearest neighbours are found inside SQLite with sqlite-vec's
``vec_distance_cosine`` when the extension loads; otherwise the same rows are
read and compared with numpy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import apsw

from .embeddings import EmbeddingModel, embedding_text, text_hash
from .store import FunctionStore, tier_filters

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

BATCH_SIZE = 32
PROGRESS_MIN = 50
"""A progress bar appears when at least this many functions need embedding."""


@dataclass(frozen=True)
class VectorHit:
    """One function found by vector search: its id and cosine distance (0 is identical)."""

    function_id: int
    distance: float


@dataclass
class _Pending:
    function_id: int
    text: str
    digest: str


def load_sqlite_vec(conn: apsw.Connection) -> bool:
    """Load the sqlite-vec extension into ``conn``; returns False when it cannot be loaded."""
    try:
        import sqlite_vec

        conn.enable_load_extension(True)
        try:
            conn.load_extension(sqlite_vec.loadable_path())
        finally:
            conn.enable_load_extension(False)
    except (ImportError, AttributeError, apsw.Error, OSError) as exc:
        log.info("sqlite-vec is not available (%s); vector search uses numpy", exc)
        return False
    return True


class VectorIndex:
    """The embeddings of one library for one model at a time."""

    def __init__(
        self, store: FunctionStore, *, use_sqlite_vec: bool = True, show_progress: bool = False
    ) -> None:
        # sqlite-vec is loaded on first use: its Python package imports numpy, which
        # would add about 40 ms to every start, cache hits included.
        self.store = store
        self._use_sqlite_vec = use_sqlite_vec
        self._in_sqlite: bool | None = None
        self.show_progress = show_progress
        self.embedded = 0
        """Texts embedded by the model in this session (reused vectors are not counted)."""
        self.reused = 0
        """Functions that took a stored vector of identical text instead of a new embedding."""
        self._checked_model: str | None = None
        self._state: tuple[int, int, int] | None = None

    # -- keeping vectors in step ----------------------------------------

    @property
    def in_sqlite(self) -> bool:
        """True when KNN runs inside SQLite through sqlite-vec, False for the numpy fallback."""
        if self._in_sqlite is None:
            self._in_sqlite = self._use_sqlite_vec and load_sqlite_vec(self.store.conn)
        return self._in_sqlite

    def sync(self, model: EmbeddingModel) -> None:
        """Embed every function that has no current vector for ``model``.

        The first call for a model compares the text hash of every function.
        Later calls look only for functions added or replaced since, so they
        cost one small query while nothing changed.
        """
        state = self._library_state()
        if self._checked_model == model.name and state == self._state:
            return
        full = self._checked_model != model.name
        pending = self._stale(model, full)
        if pending:
            self._fill(model, pending)
        with self.store.write() as conn:
            conn.execute("DELETE FROM embeddings WHERE function_id IS NULL")
        self._checked_model = model.name
        self._state = self._library_state()

    def _library_state(self) -> tuple[int, int, int]:
        """Return numbers that change whenever a function is added, deleted or replaced.

        A replaced function may get its old row id back, so the count of
        released vectors (``function_id`` NULL) is part of the state.
        """
        row = self.store.query(
            "SELECT (SELECT count(*) FROM functions), (SELECT coalesce(max(id), 0) FROM functions), "
            "(SELECT count(*) FROM embeddings WHERE function_id IS NULL)"
        )[0]
        return int(row[0]), int(row[1]), int(row[2])

    def _stale(self, model: EmbeddingModel, full: bool) -> list[_Pending]:
        if full:
            rows = self.store.query(
                "SELECT f.id, f.name, f.description, e.text_hash, e.dimension "
                "FROM functions AS f LEFT JOIN embeddings AS e "
                "ON e.function_id = f.id AND e.model = ?",
                (model.name,),
            )
        else:
            rows = self.store.query(
                "SELECT f.id, f.name, f.description, NULL, NULL FROM functions AS f "
                "WHERE NOT EXISTS (SELECT 1 FROM embeddings AS e "
                "WHERE e.function_id = f.id AND e.model = ?)",
                (model.name,),
            )
        pending = []
        for function_id, name, description, stored_hash, dimension in rows:
            text = embedding_text(name, description)
            digest = text_hash(text)
            if stored_hash != digest or dimension != model.dimension:
                pending.append(_Pending(int(function_id), text, digest))
        return pending

    def _fill(self, model: EmbeddingModel, pending: list[_Pending]) -> None:
        import numpy as np

        to_embed: list[_Pending] = []
        with self.store.write() as conn:
            for item in pending:
                vector = self._stored_vector(model, item.digest)
                if vector is None:
                    to_embed.append(item)
                else:
                    self._put(conn, model, item, vector)
                    self.reused += 1
        with self._progress(len(to_embed), model.name) as advance:
            for start in range(0, len(to_embed), BATCH_SIZE):
                batch = to_embed[start : start + BATCH_SIZE]
                vectors = model.embed([item.text for item in batch])
                with self.store.write() as conn:
                    for item, row in zip(batch, vectors, strict=True):
                        self._put(conn, model, item, row.astype(np.float32).tobytes())
                self.embedded += len(batch)
                advance(len(batch))

    def _stored_vector(self, model: EmbeddingModel, digest: str) -> bytes | None:
        rows = self.store.query(
            "SELECT vector FROM embeddings WHERE model = ? AND text_hash = ? AND dimension = ? "
            "LIMIT 1",
            (model.name, digest, model.dimension),
        )
        return bytes(rows[0][0]) if rows else None

    @staticmethod
    def _put(conn: apsw.Connection, model: EmbeddingModel, item: _Pending, vector: bytes) -> None:
        conn.execute(
            "DELETE FROM embeddings WHERE function_id = ? AND model = ?",
            (item.function_id, model.name),
        )
        conn.execute(
            "INSERT INTO embeddings (function_id, model, dimension, text_hash, vector, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (item.function_id, model.name, model.dimension, item.digest, vector, time.time()),
        )

    @contextmanager
    def _progress(self, total: int, model_name: str) -> Iterator[Callable[[int], None]]:
        if not self.show_progress or total < PROGRESS_MIN:
            yield lambda count: None
            return
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task(
                f"[search] embedding {total} functions ({model_name})", total=total
            )
            yield lambda count: progress.advance(task, count)

    # -- nearest neighbours ----------------------------------------------

    def nearest(
        self,
        model: EmbeddingModel,
        query: np.ndarray,
        *,
        tier: str | None = None,
        signature: str | None = None,
        limit: int = 20,
    ) -> list[VectorHit]:
        """Return up to ``limit`` functions closest to ``query``, nearest first.

        ``tier`` and ``signature``, when given, keep only functions with
        exactly that tier and signature.
        """
        filters, filter_bindings = tier_filters(tier, signature)
        bindings: list[object] = [model.name, model.dimension, *filter_bindings]
        source = (
            "FROM functions AS f JOIN embeddings AS e ON e.function_id = f.id "
            f"WHERE e.model = ? AND e.dimension = ?{filters}"
        )
        import numpy as np

        vector = np.asarray(query, dtype=np.float32).tobytes()
        if self.in_sqlite:
            rows = self.store.query(
                "SELECT f.id, vec_distance_cosine(e.vector, ?) AS distance "
                f"{source} ORDER BY distance LIMIT ?",
                (vector, *bindings, limit),
            )
            return [VectorHit(int(row[0]), float(row[1])) for row in rows]
        return self._nearest_numpy(query, f"SELECT f.id, e.vector {source}", bindings, limit)

    def _nearest_numpy(
        self, query: np.ndarray, sql: str, bindings: list[object], limit: int
    ) -> list[VectorHit]:
        import numpy as np

        rows = self.store.query(sql, tuple(bindings))
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(bytes(row[1]) for row in rows), dtype=np.float32)
        matrix = matrix.reshape(len(rows), -1)
        distances = 1.0 - matrix @ np.asarray(query, dtype=np.float32)
        order = np.argsort(distances, kind="stable")[:limit]
        return [VectorHit(int(rows[i][0]), float(distances[i])) for i in order]
