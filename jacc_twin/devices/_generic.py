"""`GenericValueModel`: a settable value with limits, a response model, noise and resolution."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from ._base import EventRecord, VirtualDevice
from ._response import Instant, ResponseModel

__all__ = ["GenericValueModel", "LimitError"]


class LimitError(ValueError):
    """A setpoint outside a device's limits, refused (``limit_mode="refuse"``)."""


class GenericValueModel(VirtualDevice):
    """A value that follows its setpoint through a response model.

    The physical value (``raw_value``, noise-free) follows the last setpoint step through
    ``response``; a reading (``value``) adds Gaussian ``noise`` and is quantised to
    ``resolution``.

    Attributes:
        unit: unit of the value (e.g. ``"A"``).
        setpoint: the value asked for; ``last_setpoint`` the one before it.
        value: the last reading (noise and resolution applied); ``raw_value`` the physical
            value at the last update.
        low, high: limits of the setpoint; ``limit_mode``: ``"clamp"`` (set to the limit) or
            ``"refuse"`` (raise `LimitError`).
        noise: rms of the reading noise, in ``unit``.
        resolution: quantum of the reading (0: none).
        response: `Instant`, `Exponential` or `Underdamped`.
        setpoint_rate: rate [Hz] of the ``setpoint`` stream: while the value moves, the
            physical value is sent to the simulation at this rate (0: the twin's model tick).
        readback_rate: rate [Hz] of the readback stream (0: none).
        event_threshold: a reading is published only when it moved by more than this since
            the last published one.
        transition_start, transition_from: time [s] and physical value of the last step's start.
    """

    kind: Literal["generic"] = "generic"
    unit: str = ""
    setpoint: float = 0.0
    last_setpoint: float = 0.0
    value: float = 0.0
    raw_value: float = 0.0
    low: float = -math.inf
    high: float = math.inf
    limit_mode: Literal["clamp", "refuse"] = "refuse"
    noise: float = Field(default=0.0, ge=0)
    resolution: float = Field(default=0.0, ge=0)
    response: ResponseModel = Field(default_factory=Instant)
    setpoint_rate: float = Field(default=0.0, ge=0)
    readback_rate: float = Field(default=0.0, ge=0)
    event_threshold: float = Field(default=0.0, ge=0)
    transition_start: float = 0.0
    transition_from: float = 0.0
    last_published: float | None = None

    @model_validator(mode="after")
    def _check_limits(self):
        if not self.low <= self.high:
            raise ValueError(f"device '{self.name}': low limit {self.low} is above high limit {self.high}")
        return self

    def rates(self) -> dict[str, float]:
        return {"readback": self.readback_rate} if self.readback_rate > 0 else {}

    def query_next_event(self, t: float) -> float:
        best = super().query_next_event(t)
        if self.setpoint_rate > 0 and self.moving(t):
            ticks = self.ticks
            k = ticks.get("setpoint")
            if k is None or k / self.setpoint_rate < t:
                k = ticks["setpoint"] = math.ceil(t * self.setpoint_rate - 1e-9)
            best = min(best, k / self.setpoint_rate)
        return best

    def on_event(self, t: float) -> list[EventRecord]:
        out = super().on_event(t)
        if self.setpoint_rate <= 0:
            return out
        k = self.ticks.get("setpoint")
        if k is not None and k / self.setpoint_rate == t:
            self.ticks["setpoint"] = k + 1
            self.raw_value = self.raw_at(t)
            out.append(EventRecord(t, self.name, "setpoint", self.raw_value))
        return out

    # ------------------------------------------------------------------ values
    def check(self, setpoint: float) -> float:
        """The setpoint this device would take for ``setpoint`` (limits applied), or `LimitError`."""
        v = float(setpoint)
        if not math.isfinite(v):
            raise LimitError(f"device '{self.name}': setpoint {v!r} is not a finite number")
        if v < self.low or v > self.high:
            if self.limit_mode == "refuse":
                raise LimitError(f"device '{self.name}': setpoint {v:g} {self.unit} is outside its limits "
                                 f"[{self.low:g}, {self.high:g}] {self.unit}")
            v = min(max(v, self.low), self.high)
        return v

    def write(self, setpoint: float, t: float) -> float:
        """Ask for ``setpoint`` at time ``t`` [s]; returns the setpoint taken (limits applied)."""
        v = self.check(setpoint)
        self.transition_from = self.raw_at(t)
        self.transition_start = float(t)
        self.last_setpoint, self.setpoint = self.setpoint, v
        self.raw_value = self.raw_at(t)
        self.t_write = float(t)
        self.ticks.pop("setpoint", None)
        return v

    def raw_at(self, t: float) -> float:
        """Physical (noise-free) value at time ``t`` [s]."""
        dt = max(float(t) - self.transition_start, 0.0)
        return float(self.response.value(self.transition_from, self.setpoint, dt))

    def moving(self, t: float) -> bool:
        """Whether the value is still following the last step at ``t``."""
        return float(t) - self.transition_start < self.response.settle_time()

    def quantise(self, v: float) -> float:
        q = self.resolution
        return v if q == 0 else q * round(v / q)

    def read(self, t: float) -> float:
        """A reading at ``t``: physical value, plus noise, quantised."""
        raw = self.raw_at(t)
        self.raw_value = raw
        noisy = raw + (self.noise * float(self.rng.standard_normal()) if self.noise > 0 else 0.0)
        self.value = self.quantise(noisy)
        self.t_read = float(t)
        return self.value

    def emit(self, stream: str, t: float) -> EventRecord | None:
        v = self.read(t)
        published = self.last_published is None or abs(v - self.last_published) > self.event_threshold
        if published:
            self.last_published = v
        return EventRecord(t, self.name, stream, v, published)
