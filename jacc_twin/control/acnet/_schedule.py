"""When a DPM request's readings are due: a device on the twin's event loop.

A periodic request is due at ``t0 + k period`` (k counted from 0 with an immediate first
reading, else from 1), computed from the integer k so that a run of any length gives
exactly the expected count; a clock event's readings are due ``delay`` after each event.
"""

from __future__ import annotations

import heapq
import math
from typing import Callable, Literal

from pydantic import PrivateAttr

from ...devices import EventRecord, VirtualDevice

__all__ = ["RequestSchedule"]


class RequestSchedule(VirtualDevice):
    """Calls ``deliver(t)`` at each due time; emits no event records of its own."""

    kind: Literal["dpm_request"] = "dpm_request"
    priority: int = 1000  # after the devices whose readings it delivers
    _deliver: Callable[[float], None] | None = PrivateAttr(default=None)
    _t0: float = PrivateAttr(default=0.0)
    _period: float | None = PrivateAttr(default=None)
    _k: int = PrivateAttr(default=0)
    _due: list = PrivateAttr(default_factory=list)
    _active: bool = PrivateAttr(default=True)

    @classmethod
    def periodic(cls, name: str, deliver, t0: float, period: float, immediate: bool) -> "RequestSchedule":
        s = cls(name=name)
        s._deliver, s._t0, s._period, s._k = deliver, float(t0), float(period), 0 if immediate else 1
        return s

    @classmethod
    def on_demand(cls, name: str, deliver) -> "RequestSchedule":
        s = cls(name=name)
        s._deliver = deliver
        return s

    def add_due(self, t: float) -> None:
        """A reading due at ``t`` (clock events: the event's time plus the delay)."""
        heapq.heappush(self._due, float(t))

    def cancel(self) -> None:
        self._active = False

    def query_next_event(self, t: float) -> float:
        if not self._active:
            return math.inf
        nxt = self._due[0] if self._due else math.inf
        if self._period is not None:
            nxt = min(nxt, self._t0 + self._k * self._period)
        return nxt

    def on_event(self, t: float) -> list[EventRecord]:
        if self._period is not None and self._t0 + self._k * self._period == t:
            self._k += 1
            self._deliver(t)
        while self._due and self._due[0] == t:
            heapq.heappop(self._due)
            self._deliver(t)
        return []
