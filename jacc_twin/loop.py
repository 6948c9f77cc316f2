"""The twin's deterministic event loop.

Every device declares the time of its next event (`VirtualDevice.query_next_event`); the
loop advances to the smallest, and asks the devices due then for their events one after the
other in a deterministic order (by default priority, then name). Time is simulated: the
loop runs as fast as it can (``clock="simulated"``) or waits for the wall clock
(``clock="wall"``, ``speed`` simulated seconds per wall second). Every event is recorded
(`EventRecord`: time stamp, device, stream, value) for replay, and counted per stream.
"""

from __future__ import annotations

import collections
import heapq
import math
import threading
import time
from typing import Callable, Iterable, Literal

from .devices import EventRecord, VirtualDevice

__all__ = ["EventLoop", "default_order"]


def default_order(device: VirtualDevice) -> tuple:
    """Order of devices due at the same time: priority (lower first), then name."""
    return (device.priority, device.name)


class EventLoop:
    """Runs devices on a simulated clock.

    Args:
        devices: the devices (names must be unique).
        t0: start time [s].
        clock: ``"simulated"`` (as fast as possible) or ``"wall"`` (paced to the wall clock).
        speed: simulated seconds per wall second with ``clock="wall"``.
        order: key of the order among devices due at the same time (default: priority, name).
        record: keep every event in ``records`` (False: count them only).

    Attributes:
        t: the loop's time [s]: every event before it has been handled.
        records: `EventRecord` list (with ``record=True``).
        counts: events per ``(device, stream)``.
        listeners: callables called with each record as it happens.
    """

    def __init__(self, devices: Iterable[VirtualDevice] = (), *, t0: float = 0.0,
                 clock: Literal["simulated", "wall"] = "simulated", speed: float = 1.0,
                 order: Callable[[VirtualDevice], tuple] = default_order, record: bool = True):
        if clock not in ("simulated", "wall"):
            raise ValueError(f"EventLoop: clock must be 'simulated' or 'wall', got {clock!r}")
        if not speed > 0:
            raise ValueError(f"EventLoop: speed must be > 0, got {speed!r}")
        self.t = float(t0)
        self.clock, self.speed, self.order, self.record = clock, float(speed), order, bool(record)
        self.devices: dict[str, VirtualDevice] = {}
        self.records: list[EventRecord] = []
        self.counts: collections.Counter = collections.Counter()
        self.listeners: list[Callable[[EventRecord], None]] = []
        self._heap: list = []
        self._version: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        for d in devices:
            self.add(d)

    # ------------------------------------------------------------------ devices
    def add(self, device: VirtualDevice) -> None:
        if device.name in self.devices:
            raise ValueError(f"EventLoop: a device named '{device.name}' is already in the loop")
        self.devices[device.name] = device
        self.reschedule(device)

    def reschedule(self, device: VirtualDevice | str) -> None:
        """Ask ``device`` for its next time again (after a write changed its plans)."""
        d = self.devices[device] if isinstance(device, str) else device
        with self._lock:
            v = self._version[d.name] = self._version.get(d.name, 0) + 1
            nxt = d.query_next_event(self.t)
            if nxt < self.t:
                raise ValueError(f"device '{d.name}' asked for an event at t = {nxt!r} s, before the "
                                 f"loop's time t = {self.t!r} s")
            if nxt < math.inf:
                heapq.heappush(self._heap, (nxt, self.order(d), v, d.name))

    # ------------------------------------------------------------------ running
    def run_until(self, t_end: float) -> int:
        """Handle every event at a time ``< t_end`` (the interval is half-open), then set the
        loop's time to ``t_end``; returns the number of events handled."""
        if t_end < self.t:
            raise ValueError(f"run_until: t_end = {t_end} s is before the loop's time {self.t} s")
        n = 0
        wall0, sim0 = time.perf_counter(), self.t
        while not self._stop.is_set():
            with self._lock:
                if not self._heap or self._heap[0][0] >= t_end:
                    break
                te, _, v, name = heapq.heappop(self._heap)
                if self._version.get(name) != v:
                    continue  # superseded by a reschedule
            if self.clock == "wall":
                wait = wall0 + (te - sim0) / self.speed - time.perf_counter()
                if wait > 0 and self._stop.wait(wait):
                    with self._lock:
                        heapq.heappush(self._heap, (te, self.order(self.devices[name]), v, name))
                    return n
            n += self._dispatch(te, self.devices[name])
        if not self._stop.is_set() and t_end < math.inf:
            self.t = float(t_end)
        return n

    def _dispatch(self, te: float, device: VirtualDevice) -> int:
        with self._lock:
            self.t = te
            recs = device.on_event(te)
            for r in recs:
                self.emit(r)
            self.reschedule(device)
        return len(recs)

    def emit(self, record: EventRecord) -> None:
        """Record and count an event (devices' events, and those the twin makes itself)."""
        self.counts[(record.device, record.stream)] += 1
        if self.record:
            self.records.append(record)
        for f in self.listeners:
            f(record)

    def step(self, dt: float) -> int:
        """Run for ``dt`` simulated seconds (events in ``[t, t + dt)``)."""
        if dt < 0:
            raise ValueError(f"step: dt must be >= 0, got {dt}")
        return self.run_until(self.t + dt)

    def next_time(self) -> float:
        """Time of the next event (``inf``: none)."""
        with self._lock:
            while self._heap and self._version.get(self._heap[0][3]) != self._heap[0][2]:
                heapq.heappop(self._heap)
            return self._heap[0][0] if self._heap else math.inf

    # ------------------------------------------------------------------ background running
    def start(self, t_end: float = math.inf) -> None:
        """Run in a background thread until ``stop()`` (or ``t_end``)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("EventLoop.start: the loop is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_until, args=(t_end,), name="jacc-twin-loop",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop a loop started with ``start()`` after the event in hand."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._stop.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stream_counts(self) -> dict[str, int]:
        """Events per ``device.stream``."""
        return {f"{d}.{s}": n for (d, s), n in sorted(self.counts.items())}
