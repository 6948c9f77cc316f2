"""Beam instruments and RF: a DC current transformer and an RF station."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

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


def _frequency_channel() -> GenericValueModel:
    return GenericValueModel(name="RF.frequency", unit="Hz", low=-2000.0, high=2000.0, noise=0.1,
                             readback_rate=1.0)


class RFStation(VirtualDevice):
    """An RF station: voltage [V], phase [deg] and frequency [Hz] channels, each a `GenericValueModel`.

    Bound to the ring's ``orbit`` stage (``segment``), whose ``delta`` input it drives
    (``quantity``): its frequency is an offset ``df`` [Hz] from the design frequency
    ``f_rf = h f_rev`` and sets the beam's momentum offset ``delta = -(df / f_rf) / eta``
    (slip factor ``eta``), so the closed orbit moves by the dispersion. It also reads the
    ``optics`` stage (``slip_factor``) and keeps the synchrotron tune of its voltage and phase
    (`jacc_twin.ring.synchrotron_tune`). The cavity it stands for is ``cavity`` (``voltage``,
    and ``lag`` = phase / 360).

    Attributes:
        cavity: the lattice element of the cavity; harmonic: its harmonic number;
        rf_frequency: design RF frequency [Hz]; slip_factor: last one received from the optics;
        delta: momentum offset the frequency sets; synchrotron_tune: of voltage and phase.
    """

    kind: Literal["rf"] = "rf"
    segment: str | None = "orbit"
    quantity: str | None = "delta"
    cavity: str = "rfc"
    voltage: GenericValueModel
    phase: GenericValueModel
    frequency: GenericValueModel = Field(default_factory=_frequency_channel)
    harmonic: int = 1
    rf_frequency: float = 0.0
    slip_factor: float = math.nan
    delta: float = 0.0
    synchrotron_tune: float = math.nan

    _CHANNELS: ClassVar[tuple[str, ...]] = ("voltage", "phase", "frequency")

    def segments(self) -> tuple[str, ...]:
        return (self.segment, "optics")

    def momentum_offset(self, slip_factor: float, t: float | None = None) -> float:
        """``delta = -(df / f_rf) / eta`` of the frequency offset now (``t``: its value then,
        None: its setpoint)."""
        df = self.frequency.setpoint if t is None else self.frequency.raw_at(t)
        if df == 0.0:
            return 0.0
        return -(df / self.rf_frequency) / slip_factor

    def receive(self, segment: str, outputs: dict, t: float) -> list[EventRecord]:
        """``optics``: takes the slip factor and updates the synchrotron tune; ``orbit``: the
        momentum offset the orbit was solved at."""
        if segment == "optics":
            from ..ring import synchrotron_tune

            self.slip_factor = float(outputs["slip_factor"])
            self.synchrotron_tune = synchrotron_tune(self.voltage.setpoint, self.phase.setpoint, self.harmonic,
                                                     self.slip_factor, outputs["reference_particle"])
        elif segment == self.segment and "delta" in outputs:
            self.delta = float(outputs["delta"])
        return []

    def rates(self) -> dict[str, float]:
        out = {}
        for ch in self._CHANNELS:
            r = getattr(self, ch).readback_rate
            if r > 0:
                out[ch] = r
        return out

    def channel(self, field: str) -> GenericValueModel:
        if field not in self._CHANNELS:
            raise ValueError(f"device '{self.name}': no channel {field!r}; channels: {list(self._CHANNELS)}")
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
