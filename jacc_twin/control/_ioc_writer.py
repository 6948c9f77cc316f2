"""`SerialWriter`: the IOC's writes applied one after the other on one thread, in order.

A write takes the twin's lock, which the event loop also takes for each event it hands out.
Taking it once per write leaves a burst of writes waiting behind the loop's events (the lock
is not fair); the writer instead takes it once for every write queued at that moment, up to
``max_hold`` seconds, then lets the loop catch up.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time

__all__ = ["SerialWriter"]


class SerialWriter:
    """Runs submitted callables in submission order on one thread, under ``lock``.

    Args:
        lock: the lock every call runs under (the twin's event-loop lock).
        max_hold: the longest time [s] the lock is held for a run of queued calls.
    """

    def __init__(self, lock, max_hold: float = 0.05, name: str = "jacc-twin-writer"):
        self.lock, self.max_hold = lock, float(max_hold)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((fn, fut))
        return fut

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            with self.lock:
                t_end = time.perf_counter() + self.max_hold
                while True:
                    fn, fut = item
                    try:
                        fut.set_result(fn())
                    except BaseException as err:  # handed to the waiting client
                        fut.set_exception(err)
                    if time.perf_counter() > t_end:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        return

    def close(self, timeout: float = 10.0) -> None:
        """Finish the calls queued so far, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
