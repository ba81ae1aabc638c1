"""Wall-clock deadlines for WebAssembly calls through wasmtime's epoch interruption.

Python signal handlers do not run while wasm code runs, so a timer in the
calling thread cannot stop a call. wasmtime instead checks an engine-wide
epoch counter at function entries and loop back-edges, and traps a store
whose epoch deadline has passed. One daemon thread advances the epoch of each
registered engine every ``TICK_S`` seconds, and stops ticking an engine that
has not started a call for longer than its idle time, which is longer than
its call timeout, so every call that starts is covered until its deadline.
wasmtime-py releases the GIL while wasm runs, so the thread ticks even
during a tight loop.
"""

from __future__ import annotations

import math
import threading
import time

import wasmtime

TICK_S = 0.01
"""Seconds between epoch ticks; a deadline fires within about one tick of its time."""
IDLE_S = 1.0
"""An engine stops being ticked this long after its call timeout has passed with no new call."""


def deadline_ticks(timeout_s: float) -> int:
    """Return the epoch deadline, in ticks beyond the current epoch, for ``timeout_s`` seconds."""
    return max(1, math.ceil(timeout_s / TICK_S)) + 1


class EngineTicker:
    """The ticking state of one engine; ``touch`` before every entry into wasm code."""

    def __init__(self, owner: EpochTicker, engine: wasmtime.Engine, timeout_s: float) -> None:
        self.owner = owner
        self.engine = engine
        self.idle_s = timeout_s + IDLE_S
        self.last_used = time.monotonic()
        self.ticking = False

    def touch(self) -> None:
        """Mark a call as starting now, and make sure the engine is being ticked.

        Cheap on purpose: one clock read and two attribute accesses when the
        engine is already ticking. The write of ``last_used`` comes before
        the read of ``ticking``; the thread does the opposite when it stops
        ticking, so one of the two always sees the other's write.
        """
        self.last_used = time.monotonic()
        if not self.ticking:
            self.owner.start(self)


class EpochTicker:
    """One daemon thread that advances the epoch of engines in use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._entries: list[EngineTicker] = []
        self._thread: threading.Thread | None = None

    def register(self, engine: wasmtime.Engine, timeout_s: float) -> EngineTicker:
        """Return the ticking state for ``engine``, whose calls time out after ``timeout_s``."""
        return EngineTicker(self, engine, timeout_s)

    def start(self, entry: EngineTicker) -> None:
        with self._lock:
            if entry not in self._entries:
                self._entries.append(entry)
            entry.ticking = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="qt45-epoch-ticker", daemon=True
                )
                self._thread.start()
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(TICK_S)
            self._tick()

    def _tick(self) -> None:
        with self._lock:
            now = time.monotonic()
            for entry in list(self._entries):
                entry.engine.increment_epoch()
                seen = entry.last_used
                if now - seen > entry.idle_s:
                    entry.ticking = False
                    if entry.last_used != seen:
                        entry.ticking = True  # a call started while we decided to stop
                    else:
                        self._entries.remove(entry)
            if not self._entries:
                self._wake.clear()


TICKER = EpochTicker()
"""The process-wide ticker; every WasmRuntime registers its engine here."""
