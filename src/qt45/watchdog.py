"""Wall-clock deadlines for WebAssembly calls through wasmtime's epoch interruption.

Python signal handlers do not run while wasm code runs, so a timer in the
calling thread cannot stop a call. wasmtime instead checks an engine-wide
epoch counter at function entries and loop back-edges, and traps a store
whose epoch deadline has passed. One daemon thread advances the epoch of each
engine every ``TICK_S`` seconds while calls run on it, and goes idle when no
engine has had a call for ``IDLE_S`` seconds. wasmtime-py releases the GIL
while wasm runs, so the thread ticks even during a tight loop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import wasmtime

TICK_S = 0.01
"""Seconds between epoch ticks; a deadline fires within about one tick of its time."""
IDLE_S = 1.0
"""The thread stops ticking an engine this long after its last call ended."""


def deadline_ticks(timeout_s: float) -> int:
    """Return the epoch deadline, in ticks beyond the current epoch, for ``timeout_s`` seconds."""
    return max(1, math.ceil(timeout_s / TICK_S)) + 1


@dataclass
class _Entry:
    engine: wasmtime.Engine
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)


class EpochTicker:
    """Advances the epoch of engines that have calls in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._entries: dict[int, _Entry] = {}
        self._thread: threading.Thread | None = None

    @contextmanager
    def running(self, engine: wasmtime.Engine) -> Iterator[None]:
        """Tick ``engine`` while the body runs (and for ``IDLE_S`` seconds after)."""
        with self._lock:
            entry = self._entries.get(id(engine))
            if entry is None:
                entry = self._entries[id(engine)] = _Entry(engine)
            entry.active += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="qt45-epoch-ticker", daemon=True
                )
                self._thread.start()
        self._wake.set()
        try:
            yield
        finally:
            with self._lock:
                entry.active -= 1
                entry.last_used = time.monotonic()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(TICK_S)
            self._tick()

    def _tick(self) -> None:
        with self._lock:
            now = time.monotonic()
            for key, entry in list(self._entries.items()):
                entry.engine.increment_epoch()
                if entry.active == 0 and now - entry.last_used > IDLE_S:
                    del self._entries[key]
            if not self._entries:
                self._wake.clear()


TICKER = EpochTicker()
"""The process-wide ticker; every WasmRuntime registers its engine here during calls."""
