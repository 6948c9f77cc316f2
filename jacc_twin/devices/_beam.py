"""Beam instruments and RF: a DC current transformer and an RF station."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from ._base import EventRecord, VirtualDevice
from ._generic import GenericValueModel

__all__ = ["DCCT", "RFStation"]


class DCCT(VirtualDevice):
    """DC current transformer: the stored beam current, decaying with the beam lifetime.

    ``I(t) = current0 exp(-(t - t_injection) / lifetime)`` plus Gaussian noise.

    Attributes:
        current0: current at injection [A]; t_injection [s]; lifetime [s].
        noise: rms noise of a reading [A]; rate: reading rate [Hz].
        current: the last reading [A].
    """

    kind: Literal["dcct"] = "dcct"
    segment: str | None = "beam"
    current0: float = Field(default=2.0e-3, ge=0)
    t_injection: float = 0.0
    lifetime: float = Field(default=600.0, gt=0)
    noise: float = Field(default=1.0e-6, ge=0)
    rate: float = Field(default=10.0, ge=0)
    current: float = math.nan

    def rates(self) -> dict[str, float]:
        return {"current": self.rate} if self.rate > 0 else {}

    def true_current(self, t: float) -> float:
        return self.current0 * math.exp(-max(t - self.t_injection, 0.0) / self.lifetime)

    def emit(self, stream: str, t: float) -> EventRecord | None:
        noise = self.noise * float(self.rng.standard_normal()) if self.noise > 0 else 0.0
        self.current = self.true_current(t) + noise
        self.t_read = t
        return EventRecord(t, self.name, stream, self.current)


class RFStation(VirtualDevice):
    """An RF station: voltage [V] and phase [deg] channels, each a `GenericValueModel`.

    It drives the cavity ``quantity`` (``voltage``, and ``lag`` = phase / 360); the
    closed-orbit model of the ring is 4D (RF off), so the orbit does not depend on it.
    """

    kind: Literal["rf"] = "rf"
    segment: str | None = "ring.rf"
    voltage: GenericValueModel
    phase: GenericValueModel

    def rates(self) -> dict[str, float]:
        out = {}
        for ch in ("voltage", "phase"):
            r = getattr(self, ch).readback_rate
            if r > 0:
                out[ch] = r
        return out

    def channel(self, field: str) -> GenericValueModel:
        if field not in ("voltage", "phase"):
            raise ValueError(f"device '{self.name}': no channel {field!r}; channels: ['voltage', 'phase']")
        return getattr(self, field)

    def write(self, field: str, value: float, t: float) -> float:
        self.t_write = float(t)
        return self.channel(field).write(value, t)

    def emit(self, stream: str, t: float) -> EventRecord | None:
        ch = self.channel(stream)
        ch._rng = ch._rng or self.rng
        v = ch.read(t)
        self.t_read = t
        return EventRecord(t, self.name, stream, v)
