"""`DPMAdapter`: DRF2 requests served by a twin, as Fermilab's data pool manager serves them.

ACNET names come from the twin's name table (`jacc_twin.names`: ``N:IHA1R`` with property
``SETTING`` is ``HCA1R:SETTING``); ``aliases`` add names of other machines' devices. Immediate
requests read the twin now; periodic (``@P``, ``@Q``) and clock-event (``@E``) requests
deliver a stream of `Reading` on the twin's event loop, simulated or paced to the wall
clock, to a `Subscription` (a thread-safe queue and list; callbacks run on the loop's
thread, so they work inside a notebook while the loop runs in the background).
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
from typing import Callable, NamedTuple

import numpy as np

from ...names import lookup, variables
from ._parse import parse
from ._request import (ArrayRange, ClockEvent, DefaultEvent, ImmediateEvent, NeverEvent, PeriodicEvent,
                       Request)
from ._schedule import RequestSchedule

__all__ = ["DPMAdapter", "Reading", "Subscription", "CLOCK_EVENTS"]

# the twin's clock events: number -> the "device.stream" of the event loop that fires it
CLOCK_EVENTS = {
    0x0A: "MODEL.tick",      # 10 Hz: the model tick (queued writes applied, supplies followed)
    0x1D: "DCCT.current",    # 10 Hz: a beam-current reading
    0x8F: "TIMER.tick",      # 1 Hz: the heartbeat
}


_IDS = itertools.count(1)  # names of the requests' schedules on event loops, unique per process


class Reading(NamedTuple):
    """One reading: the twin's time [s], the value, and the request (canonical text)."""

    t: float
    value: float | np.ndarray
    request: str


class Subscription:
    """The readings of a periodic or clock-event request: ``readings`` (every one so far),
    ``get(timeout)`` (the next one, waiting), ``cancel()``."""

    def __init__(self, adapter: "DPMAdapter", request: Request, callback: Callable | None):
        self.adapter, self.request, self.callback = adapter, request, callback
        self.readings: list[Reading] = []
        self._queue: queue.Queue = queue.Queue()
        self._last = None
        self.schedule: RequestSchedule | None = None

    def _deliver(self, t: float) -> None:
        value = self.adapter._value(self.request)
        ev = self.request.event
        if isinstance(ev, PeriodicEvent) and not ev.continuous:  # @Q: on change only
            if self._last is not None and np.array_equal(value, self._last):
                return
            self._last = value
        r = Reading(t, value, self.request.canonical())
        self.readings.append(r)
        self._queue.put(r)
        if self.callback is not None:
            self.callback(r)

    def get(self, timeout: float | None = None) -> Reading:
        """The next reading not taken yet (``queue.Empty`` after ``timeout`` wall seconds)."""
        return self._queue.get(timeout=timeout)

    def cancel(self) -> None:
        self.adapter._cancel(self)


class DPMAdapter:
    """DRF2 requests (`parse`) served by ``twin`` (an `jacc_twin.iota.IotaTwin`).

    Args:
        twin: the twin.
        aliases: ``{ACNET device: twin variable}`` for names outside the table, e.g.
            ``{"B:TRMH1D": "DCCT:CURRENT"}``.
        clock_events: ``{event number: "device.stream"}`` (default `CLOCK_EVENTS`).
    """

    def __init__(self, twin, aliases: dict | None = None, clock_events: dict | None = None):
        self.twin = twin
        self.aliases = {parse(k).device: v for k, v in (aliases or {}).items()}
        self.clock_events = dict(CLOCK_EVENTS if clock_events is None else clock_events)
        self._subs: dict[tuple[str, str], list[Subscription]] = {}
        self._lock = getattr(twin.loop, "_lock", threading.RLock())
        twin.loop.listeners.append(self._on_record)

    # ------------------------------------------------------------------ names
    def variable(self, request: Request | str):
        """The twin variable (`jacc_twin.names.Variable`) a request names."""
        r = parse(request) if isinstance(request, str) else request
        if r.property not in ("READING", "SETTING"):
            raise ValueError(f"{r.canonical()}: the twin serves the READING and SETTING properties, "
                             f"not {r.property}")
        if r.device in self.aliases:
            return lookup(self.aliases[r.device])
        try:
            return lookup(f"{r.device}.{r.property}")
        except KeyError:
            known = sorted({v.acnet for v in variables().values()})
            raise KeyError(f"{r.canonical()}: no twin device {r.device} with property {r.property} "
                           f"({len(known)} ACNET devices in jacc_twin/data/devices.csv, e.g. {known[:3]})") from None

    def _value(self, r: Request):
        v = self.variable(r)
        if r.field not in ("SCALED", "PRIMARY"):
            # the twin's devices hold engineering units; PRIMARY is taken as the same value
            raise ValueError(f"{r.canonical()}: field {r.field} is not served (SCALED or PRIMARY)")
        value = self.twin.read(v.variable)
        if v.kind == "waveform":
            value = np.asarray(value)
            rng = r.range or ArrayRange(0, None)
            if not isinstance(rng, ArrayRange):
                raise ValueError(f"{r.canonical()}: a byte range is not served; use an array range")
            return value[rng.start:None if rng.end is None else rng.end + 1]
        if r.range not in (None, ArrayRange(0, None), ArrayRange(0, 0)):
            raise ValueError(f"{r.canonical()}: {v.variable} is a scalar; range {r.range.canonical()} is out of it")
        return value

    # ------------------------------------------------------------------ reads and settings
    def read(self, request: Request | str, timeout: float = 10.0):
        """One reading: now for ``@I`` (and no event); the first delivered reading for a
        periodic or clock-event request (the twin's simulated clock is stepped when the loop
        is not running; else at most ``timeout`` wall seconds are waited)."""
        r = parse(request) if isinstance(request, str) else request
        if isinstance(r.event, (DefaultEvent, ImmediateEvent)):
            with self._lock:
                return self._value(r)
        if isinstance(r.event, NeverEvent):
            raise ValueError(f"{r.canonical()}: event N never delivers a reading")
        sub = self.subscribe(r)
        try:
            if self.twin.loop.running:
                return sub.get(timeout=timeout).value
            t_end = self.twin.t + timeout
            while not sub.readings and self.twin.t < t_end:
                self.twin.step(min(0.1, t_end - self.twin.t))
            if not sub.readings:
                raise TimeoutError(f"{r.canonical()}: no reading within {timeout} simulated seconds")
            return sub.readings[0].value
        finally:
            sub.cancel()

    def set(self, request: Request | str, value) -> None:
        """Set a SETTING to ``value`` (engineering units); the twin's limits apply
        (`jacc_twin.devices.LimitError`), NaN and infinities are refused."""
        r = parse(request) if isinstance(request, str) else request
        if r.property != "SETTING":
            raise ValueError(f"{r.canonical()}: only the SETTING property can be set, not {r.property}")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{r.canonical()}: a setting is a real number, got {type(value).__name__}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{r.canonical()}: setting {value!r} is not a finite number")
        v = self.variable(r)
        with self._lock:
            self.twin.write({v.variable: float(value)})

    # ------------------------------------------------------------------ streams
    def subscribe(self, request: Request | str, callback: Callable[[Reading], None] | None = None) -> Subscription:
        """Readings of a periodic (``@P``, ``@Q``) or clock-event (``@E``) request."""
        r = parse(request) if isinstance(request, str) else request
        self._value(r)  # a bad request fails here, not on the loop's thread
        sub = Subscription(self, r, callback)
        name = f"DPM#{next(_IDS)}"
        with self._lock:
            if isinstance(r.event, PeriodicEvent):
                sub.schedule = RequestSchedule.periodic(name, sub._deliver, self.twin.loop.t,
                                                        r.event.period.seconds, r.event.immediate)
            elif isinstance(r.event, ClockEvent):
                key = self._clock_key(r)
                sub.schedule = RequestSchedule.on_demand(name, sub._deliver)
                self._subs.setdefault(key, []).append(sub)
            else:
                raise ValueError(f"{r.canonical()}: subscribe takes a periodic or clock-event request "
                                 f"(@P, @Q, @E), got {r.event.describe()}")
            self.twin.loop.add(sub.schedule)
        return sub

    def _clock_key(self, r: Request) -> tuple[str, str]:
        n = r.event.number
        if n not in self.clock_events:
            known = ", ".join(f"0x{k:X} ({v})" for k, v in sorted(self.clock_events.items()))
            raise ValueError(f"{r.canonical()}: the twin has no clock event 0x{n:X}; its events: {known}")
        dev, _, stream = self.clock_events[n].partition(".")
        return dev, stream

    def _on_record(self, rec) -> None:
        subs = self._subs.get((rec.device, rec.stream))
        if not subs:
            return
        for sub in subs:
            sub.schedule.add_due(rec.t + sub.request.event.delay.seconds)
            self.twin.loop.reschedule(sub.schedule)

    def _cancel(self, sub: Subscription) -> None:
        with self._lock:
            for subs in self._subs.values():
                if sub in subs:
                    subs.remove(sub)
            if sub.schedule is not None:
                sub.schedule.cancel()
                self.twin.loop.reschedule(sub.schedule)

    def close(self) -> None:
        """Cancel every stream and stop listening to the twin."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.cancel()
        if self._on_record in self.twin.loop.listeners:
            self.twin.loop.listeners.remove(self._on_record)
