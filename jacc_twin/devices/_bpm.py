"""Beam position monitors: calibration errors, noise and the data streams of a control room."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from ._base import EventRecord, VirtualDevice

__all__ = ["BPM"]


class BPM(VirtualDevice):
    """A beam position monitor bound to the beam position at one lattice placement.

    A beam at ``(x, y)`` [m] reads, in turn: rolled by ``roll``
    (``xr = x cos + y sin``, ``yr = -x sin + y cos``, as `jacc.calibrate`'s BPM model), the
    pickup's cubic distortion (``u = xr (1 + pincushion (xr^2 + yr^2))``, likewise ``v``),
    the gains, then the offsets and their slow drift, then noise and resolution:
    ``reading_x = gain_x u + offset_x + drift_x t + noise``.

    Streams: ``orbit_10hz`` (one reading, noise ``noise``), ``orbit_1hz`` (the mean of the
    10 Hz readings since the last one), and on request ``tbt`` (turn-by-turn buffer from
    tracking, noise ``noise_tbt`` per turn) and ``single_pass`` (its first turn).

    Bound to the ``orbit`` stage (``segment``) at the monitor element ``quantity``; turn-by-turn
    data come from the ``tbt`` stage (``tbt_segment``).

    Attributes:
        offset_x, offset_y: electrical offsets [m]; drift_x, drift_y: their drift [m/s].
        gain_x, gain_y: gains [1]; roll [rad]; pincushion [1/m^2].
        noise, noise_tbt: rms noise of one orbit reading and of one turn [m]; resolution [m].
        rate_10hz, rate_1hz: stream rates [Hz] (0: off).
        position_x, position_y: the beam position last received [m] (the truth).
        x, y: last 10 Hz reading [m]; x_1hz, y_1hz: last 1 Hz reading [m].
    """

    kind: Literal["bpm"] = "bpm"
    segment: str | None = "orbit"
    tbt_segment: str | None = "tbt"
    offset_x: float = 0.0
    offset_y: float = 0.0
    drift_x: float = 0.0
    drift_y: float = 0.0
    gain_x: float = 1.0
    gain_y: float = 1.0
    roll: float = 0.0
    pincushion: float = 0.0
    noise: float = Field(default=0.0, ge=0)
    noise_tbt: float = Field(default=0.0, ge=0)
    resolution: float = Field(default=0.0, ge=0)
    rate_10hz: float = Field(default=10.0, ge=0)
    rate_1hz: float = Field(default=1.0, ge=0)
    position_x: float = 0.0
    position_y: float = 0.0
    x: float = math.nan
    y: float = math.nan
    x_1hz: float = math.nan
    y_1hz: float = math.nan
    sum_x: float = 0.0
    sum_y: float = 0.0
    n_sum: int = 0

    def rates(self) -> dict[str, float]:
        out = {}
        if self.rate_10hz > 0:
            out["orbit_10hz"] = self.rate_10hz
        if self.rate_1hz > 0:
            out["orbit_1hz"] = self.rate_1hz
        return out

    def reading(self, x, y, t: float, noise: float = 0.0):
        """What the BPM reads for a beam at ``(x, y)`` [m] (arrays allowed) at time ``t`` [s]."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        c, s = math.cos(self.roll), math.sin(self.roll)
        xr, yr = c * x + s * y, -s * x + c * y
        dist = 1.0 + self.pincushion * (xr * xr + yr * yr)
        u = self.gain_x * xr * dist + self.offset_x + self.drift_x * t
        v = self.gain_y * yr * dist + self.offset_y + self.drift_y * t
        if noise > 0:
            u = u + noise * self.rng.standard_normal(np.shape(u))
            v = v + noise * self.rng.standard_normal(np.shape(v))
        if self.resolution > 0:
            u = self.resolution * np.round(u / self.resolution)
            v = self.resolution * np.round(v / self.resolution)
        return u, v

    def _reading_now(self, t: float) -> tuple[float, float]:
        """`reading` of the received position with orbit noise (scalar arithmetic: the 10 Hz
        stream's hot path)."""
        c, s = math.cos(self.roll), math.sin(self.roll)
        x, y = self.position_x, self.position_y
        xr, yr = c * x + s * y, -s * x + c * y
        dist = 1.0 + self.pincushion * (xr * xr + yr * yr)
        u = self.gain_x * xr * dist + self.offset_x + self.drift_x * t
        v = self.gain_y * yr * dist + self.offset_y + self.drift_y * t
        if self.noise > 0:
            nu, nv = self.rng.standard_normal(2)
            u, v = u + self.noise * float(nu), v + self.noise * float(nv)
        if self.resolution > 0:
            u, v = self.resolution * round(u / self.resolution), self.resolution * round(v / self.resolution)
        return u, v

    def refresh(self, t: float) -> None:
        """Take a reading of the current position now (a poll: no event, no 1 Hz sample)."""
        self.x, self.y = self._reading_now(t)
        self.t_read = t

    def emit(self, stream: str, t: float) -> EventRecord | None:
        if stream == "orbit_10hz":
            self.x, self.y = self._reading_now(t)
            self.sum_x += self.x
            self.sum_y += self.y
            self.n_sum += 1
            self.t_read = t
            return EventRecord(t, self.name, stream, (self.x, self.y))
        if self.n_sum == 0:  # no 10 Hz stream: a reading of its own
            u, v = self._reading_now(t)
            self.sum_x, self.sum_y, self.n_sum = u, v, 1
        self.x_1hz, self.y_1hz = self.sum_x / self.n_sum, self.sum_y / self.n_sum
        self.sum_x = self.sum_y = 0.0
        self.n_sum = 0
        return EventRecord(t, self.name, stream, (self.x_1hz, self.y_1hz))

    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in (self.segment, self.tbt_segment) if s is not None)

    def receive(self, segment: str, outputs: dict, t: float) -> list[EventRecord]:
        """``segment`` (the ``orbit`` stage): ports ``bpm_x``, ``bpm_y`` at the monitors
        ``monitor_index`` (element -> column), the element being ``quantity``;
        ``tbt_segment`` (the ``tbt`` stage): ``tbt_x``, ``tbt_y`` (turns, monitors) give the
        ``single_pass`` and ``tbt`` records."""
        i = outputs["monitor_index"].get(self.quantity)
        if i is None:
            return []
        if segment == self.segment:
            self.position_x, self.position_y = float(outputs["bpm_x"][i]), float(outputs["bpm_y"][i])
            return []
        if segment != self.tbt_segment:
            return []
        u, v = self.reading(outputs["tbt_x"][:, i], outputs["tbt_y"][:, i], t, self.noise_tbt)
        return [EventRecord(t, self.name, "single_pass", (float(u[0]), float(v[0]))),
                EventRecord(t, self.name, "tbt", (u, v))]
