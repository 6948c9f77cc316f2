"""Response models: how a device's physical value follows a setpoint step.

Each model gives the value ``dt`` seconds after a step from ``y0`` to ``y1`` (the device
restarts the step from its current value when a new setpoint arrives during a transition).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Instant", "Exponential", "Underdamped", "ResponseModel"]


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def value(self, y0: float, y1: float, dt: float) -> float:
        raise NotImplementedError

    def settle_time(self) -> float:
        """Time [s] after a step when the value equals the target to double precision."""
        raise NotImplementedError


class Instant(_Response):
    """The value jumps to the setpoint."""

    kind: Literal["instant"] = "instant"

    def value(self, y0: float, y1: float, dt: float) -> float:
        return y1

    def settle_time(self) -> float:
        return 0.0


class Exponential(_Response):
    """First-order lag: ``y = y1 + (y0 - y1) exp(-dt / tau)``.

    Attributes:
        tau: time constant [s].
    """

    kind: Literal["exponential"] = "exponential"
    tau: float = Field(gt=0, allow_inf_nan=False)

    def value(self, y0: float, y1: float, dt: float) -> float:
        return y1 + (y0 - y1) * math.exp(-dt / self.tau)

    def settle_time(self) -> float:
        return 40.0 * self.tau  # exp(-40) = 4e-18


class Underdamped(_Response):
    """Second-order system ``y'' + 2 zeta w y' + w^2 (y - y1) = 0`` from rest at ``y0``.

    ``y = y1 - (y1 - y0) exp(-zeta w t) (cos(wd t) + zeta / sqrt(1 - zeta^2) sin(wd t))``,
    ``w = 2 pi frequency``, ``wd = w sqrt(1 - zeta^2)``; the first peak, at ``t = pi / wd``,
    overshoots by ``exp(-pi zeta / sqrt(1 - zeta^2))`` of the step.

    Attributes:
        frequency: natural frequency [Hz].
        damping: damping ratio zeta, 0 < zeta < 1.
    """

    kind: Literal["underdamped"] = "underdamped"
    frequency: float = Field(gt=0, allow_inf_nan=False)
    damping: float = Field(gt=0, lt=1)

    def value(self, y0: float, y1: float, dt: float) -> float:
        w = 2.0 * math.pi * self.frequency
        z = self.damping
        wd = w * math.sqrt(1.0 - z * z)
        env = math.exp(-z * w * dt)
        return y1 - (y1 - y0) * env * (math.cos(wd * dt) + z / math.sqrt(1.0 - z * z) * math.sin(wd * dt))

    def overshoot(self) -> float:
        """Relative overshoot of the first peak (analytic)."""
        z = self.damping
        return math.exp(-math.pi * z / math.sqrt(1.0 - z * z))

    def settle_time(self) -> float:
        return 40.0 / (self.damping * 2.0 * math.pi * self.frequency)


ResponseModel = Annotated[Union[Instant, Exponential, Underdamped], Field(discriminator="kind")]
