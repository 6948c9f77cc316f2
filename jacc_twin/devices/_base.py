"""`VirtualDevice`: the base of every device of the twin, and the event record.

A device declares data streams, each with a rate [Hz]: stream ``s`` wants events at the
times ``k / rate`` (k = 0, 1, 2...), counted with integers so that the event times of a
run are exact and reproducible. The event loop asks ``query_next_event(t)`` for the next
wanted time and calls ``on_event(t)`` when it is due; the device returns event records.
Devices bind to a simulation segment, a pipeline stage of the twin by its name
(``segment``), and a quantity there (``quantity``: an element, a model parameter or an
output), and receive the stage's outputs through ``receive`` after each run of it
(``segments()``: every stage a device listens to).
"""

from __future__ import annotations

import math
import zlib
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = ["EventRecord", "VirtualDevice"]


class EventRecord(NamedTuple):
    """One event: simulated time [s], device, stream, value, and whether it was published
    (a change above the device's event threshold)."""

    t: float
    device: str
    stream: str
    value: Any
    published: bool = True


class VirtualDevice(BaseModel):
    """Base of the virtual devices (Pydantic: the whole state serialises to JSON).

    Attributes:
        kind: the device type (the discriminator of the JSON).
        name: unique device name (the table of names, `jacc_twin.names`).
        segment: the pipeline stage the device is bound to, by name (e.g. ``"orbit"``).
        quantity: what it reads or drives there (an element, a knob or an output).
        priority: order among devices due at the same time (lower first, then by name).
        seed: seed of the device's random numbers (noise); with its name it gives one stream.
        t_update, t_read, t_write: simulated times [s] of the last update, read and write.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False, ser_json_inf_nan="constants")

    kind: str
    name: str = Field(min_length=1)
    segment: str | None = None
    quantity: str | None = None
    priority: int = 0
    seed: int = 0
    t_update: float | None = None
    t_read: float | None = None
    t_write: float | None = None

    _rng: np.random.Generator | None = PrivateAttr(default=None)
    _ticks: dict = PrivateAttr(default_factory=dict)

    # ------------------------------------------------------------------ random numbers
    @property
    def rng(self) -> np.random.Generator:
        """The device's generator, seeded by ``seed`` and its name."""
        priv = self.__pydantic_private__  # direct: pydantic's private-attribute lookup is slow
        if priv["_rng"] is None:
            priv["_rng"] = np.random.default_rng([int(self.seed), zlib.crc32(self.name.encode())])
        return priv["_rng"]

    def restart(self, t0: float = 0.0) -> None:
        """Reseed the noise and put every stream's next event at or after ``t0`` [s]."""
        self._rng = None
        self._ticks = {s: math.ceil(t0 * r - 1e-9) for s, r in self.rates().items()}

    # ------------------------------------------------------------------ streams
    def rates(self) -> dict[str, float]:
        """Streams with a rate [Hz] > 0 (a rate of 0 is a stream on request)."""
        return {}

    @property
    def ticks(self) -> dict:
        """Next event index of each stream (its time is ``index / rate``)."""
        return self.__pydantic_private__["_ticks"]

    def _tick(self, stream: str) -> int:
        return self.__pydantic_private__["_ticks"].setdefault(stream, 0)

    def query_next_event(self, t: float) -> float:
        """Simulated time [s] of the next event this device wants (``inf``: none)."""
        best = math.inf
        ticks = self.__pydantic_private__["_ticks"]
        for s, r in self.rates().items():
            k = ticks.setdefault(s, 0)
            if k / r < best:
                best = k / r
        return best

    def on_event(self, t: float) -> list[EventRecord]:
        """Handle the events due at ``t``: each stream whose next time is ``t`` emits once."""
        out = []
        ticks = self.__pydantic_private__["_ticks"]
        for s, r in self.rates().items():
            if ticks.setdefault(s, 0) / r == t:
                ticks[s] += 1
                rec = self.emit(s, t)
                if rec is not None:
                    out.append(rec)
        self.t_update = t
        return out

    def emit(self, stream: str, t: float) -> EventRecord | None:
        """The record of one event of ``stream`` at ``t`` (subclasses)."""
        return None

    def segments(self) -> tuple[str, ...]:
        """The stages whose outputs the device receives (its ``segment``; subclasses add more)."""
        return () if self.segment is None else (self.segment,)

    def receive(self, segment: str, outputs: dict, t: float) -> list[EventRecord]:
        """Outputs of the bound segment after a computation at ``t``; returns the records of
        streams the outputs trigger (turn-by-turn data), if any (subclasses)."""
        return []

    def snapshot(self) -> dict:
        """The device's state, for rolling back a refused write (`restore`)."""
        return self.model_dump()

    def restore(self, state: dict) -> None:
        """Put back a `snapshot` (the noise generator and stream counters go on)."""
        new = type(self).model_validate(state)
        for k in type(self).model_fields:
            setattr(self, k, getattr(new, k))
