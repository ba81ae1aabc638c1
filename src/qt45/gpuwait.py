"""GpuWork: GPU work run in a daemon thread, so that the caller can wait for it with a timeout.

wgpu cannot interrupt a shader once it is submitted, and its blocking waits
(``GPUPromise.sync_wait``, ``queue.read_buffer``) take no timeout. In wgpu-py
0.32, ``queue.on_submitted_work_done_sync`` fails because its callback type
does not match wgpu-native's. So the GPU tier submits each dispatch, then maps
a small fence buffer that a copy after the dispatch writes to, all in a worker
thread, and the calling thread waits for that thread with a timeout.

While a submission runs, a wgpu call from another thread can block until it
ends. With Mesa's lavapipe, mapping a buffer of the busy device, and
submitting work on or opening a second device, all waited for the first
device's work. So every wgpu call that may wait for the GPU runs in the
worker thread, and the objects it creates are owned by that thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class GpuWork:
    """One piece of GPU work running in a daemon thread; ``wait`` bounds how long the caller waits.

    ``idle`` is set when the work ends, whether or not a caller still waits
    for it. The thread is a daemon thread, so it does not keep qt45 from
    exiting.
    """

    def __init__(self, run: Callable[[], None], idle: threading.Event, label: str) -> None:
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._run = run
        self._idle = idle
        idle.clear()
        self._thread = threading.Thread(target=self._main, name=f"qt45-gpu-{label}", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # re-raised in the waiting thread by wait()
            self.error = exc
        finally:
            self._run = _nothing  # drop what the work referenced once it ends
            self.finished.set()
            self._idle.set()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` seconds; returns False if the work is still running.

        An exception raised by the work is raised here.
        """
        if not self.finished.wait(max(0.0, timeout_s)):
            return False
        if self.error is not None:
            raise self.error
        return True


def _nothing() -> None:
    return None
