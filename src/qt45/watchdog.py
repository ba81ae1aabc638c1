"""Wall-clock deadlines for WebAssembly calls through wasmtime's epoch interruption.

Python signal handlers do not run while wasm code runs, so a timer in the
calling thread cannot stop a call. wasmtime instead checks an engine-wide
epoch counter at function entries and loop back-edges, and traps a store
whose epoch deadline has passed. One daemon thread advances the epoch of each
registered engine every ``TICK_S`` seconds. It stops ticking an engine that
has started no call for longer than its idle time. The idle time is longer
than the call timeout, so every call that starts is covered until its deadline.
wasmtime-py releases the GIL while wasm runs, so the thread ticks even
during a tight loop.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

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
        self.deadline_ticks = deadline_ticks(timeout_s)
        self.idle_s = timeout_s + IDLE_S
        self.last_used = time.monotonic()
        self.ticking = False

    def touch(self) -> None:
        """Mark a call as starting now, and make sure the engine is being ticked.

        Cheap on purpose: one clock read and two attribute accesses when the
        engine is already ticking. The write of ``last_used`` comes before
        the read of ``ticking``. The thread does the opposite when it stops
        ticking, so one of the two always reads the other's write.
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
        self._registered: weakref.WeakSet[EngineTicker] = weakref.WeakSet()
        self._thread: threading.Thread | None = None

    def register(self, engine: wasmtime.Engine, timeout_s: float) -> EngineTicker:
        """Return the ticking state for ``engine``, whose calls time out after ``timeout_s``."""
        entry = EngineTicker(self, engine, timeout_s)
        with self._lock:
            self._registered.add(entry)
        return entry

    def interrupt_all(self) -> None:
        """Make every call now running on a registered engine trap at its next epoch check.

        Advancing the epoch past the deadline is the only way to stop wasm
        code from another thread. The trap then surfaces as a time-limit
        TrapError, or as KeyboardInterrupt where a SIGINT is pending.
        """
        with self._lock:
            entries = list(self._registered)
        for entry in entries:
            for _ in range(entry.deadline_ticks + 1):
                entry.engine.increment_epoch()

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


class _SigintWatcher:
    """Stops running wasm code on Ctrl-C.

    Python runs signal handlers only between bytecodes, so a SIGINT waits
    until a wasm call returns, which may be the end of its deadline. The
    C-level handler still writes the signal number to the wakeup file
    descriptor at once; a daemon thread reads it and interrupts every engine.
    The pending KeyboardInterrupt is then raised as soon as the call returns.
    """

    def __init__(self) -> None:
        self._reader: int | None = None
        self._writer: int | None = None

    def _start(self) -> int:
        if self._writer is None:
            self._reader, self._writer = os.pipe()
            os.set_blocking(self._writer, False)
            threading.Thread(target=self._watch, name="qt45-sigint", daemon=True).start()
        return self._writer

    def _watch(self) -> None:
        assert self._reader is not None
        while True:
            data = os.read(self._reader, 64)
            if not data:
                return
            if signal.SIGINT in data:
                TICKER.interrupt_all()

    @contextmanager
    def active(self) -> Iterator[None]:
        """Within the body, Ctrl-C stops a running wasm call (main thread only; no-op elsewhere)."""
        if threading.current_thread() is not threading.main_thread() or os.name != "posix":
            yield
            return
        writer = self._start()
        previous = signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous)


SIGINT_WATCHER = _SigintWatcher()
"""Use ``with SIGINT_WATCHER.active():`` around requests made from the command line."""
