"""Magnet power supplies: current through an excitation function to a normalised strength."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._generic import GenericValueModel

__all__ = ["ExcitationFunction", "MagnetPowerSupply", "excitation"]


class ExcitationFunction(BaseModel):
    """Field of a magnet as an odd polynomial of its current: linear plus saturation.

    ``field(I) = c0 I + c1 I^3 + c2 I^5 ...``

    Attributes:
        name: the family (package data ``jacc_twin/data/excitation.json``).
        field: ``"integrated_dipole"`` (B L [T m]: a kick ``B L / B rho`` [rad]) or
            ``"gradient"`` (G [T/m]: ``k1 = G / B rho`` [1/m^2]).
        unit: unit of the field.
        coefficients: ``c0 [unit/A], c1 [unit/A^3], ...``.
        current_limit: the supply's largest current [A].
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    field: Literal["integrated_dipole", "gradient"]
    unit: str
    coefficients: list[float] = Field(min_length=1)
    current_limit: float = Field(gt=0)

    def __call__(self, current: float) -> float:
        """Field [unit] at ``current`` [A]."""
        i2 = current * current
        out, p = 0.0, current
        for c in self.coefficients:
            out += c * p
            p *= i2
        return out

    def derivative(self, current: float) -> float:
        i2 = current * current
        out, p = 0.0, 1.0
        for k, c in enumerate(self.coefficients):
            out += (2 * k + 1) * c * p
            p *= i2
        return out

    def current(self, field: float) -> float:
        """Current [A] giving ``field`` (Newton from the linear estimate)."""
        i = field / self.coefficients[0]
        for _ in range(50):
            step = (self(i) - field) / self.derivative(i)
            i -= step
            if abs(step) <= 1e-15 * max(1.0, abs(i)):
                break
        return i


@functools.lru_cache(maxsize=None)
def _table() -> dict:
    text = resources.files("jacc_twin").joinpath("data", "excitation.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def excitation(name: str) -> ExcitationFunction:
    """The excitation function of family ``name`` from package data."""
    table = _table()
    if name not in table:
        raise ValueError(f"unknown excitation family {name!r}; known: {sorted(table)}")
    return ExcitationFunction(name=name, **table[name])


class MagnetPowerSupply(GenericValueModel):
    """A magnet's power supply: its current [A] drives a lattice field or knob.

    The normalised strength is ``polarity calibration field(I) / brho``: a kick [rad] for
    dipole correctors, ``k1`` [1/m^2] for quadrupoles. ``calibration`` is the magnet's true
    field relative to its excitation function (a seeded fault of the machine, 1 when
    perfect); the control room's model (`current_for`) assumes 1.

    Attributes:
        excitation: `ExcitationFunction`.
        parameter: what it drives in the lattice: a knob (``"kq01"``) or ``"placement.field"``
            (``"ca1r:1.xangle"``).
        brho: magnetic rigidity of the reference particle [T m] (set by the twin).
        polarity: +1 or -1, wired so that a positive current gives a positive strength.
        calibration: true field over the excitation function's [1].
    """

    kind: Literal["magnet"] = "magnet"
    unit: str = "A"
    excitation: ExcitationFunction
    parameter: str
    brho: float = Field(gt=0)
    polarity: Literal[1, -1] = 1
    calibration: float = 1.0

    def strength(self, current: float | None = None) -> float:
        """Normalised strength of the magnet at ``current`` [A] (default: the physical current)."""
        i = self.raw_value if current is None else current
        return self.polarity * self.calibration * self.excitation(i) / self.brho

    def current_for(self, strength: float) -> float:
        """Current [A] that the excitation function says gives ``strength`` (calibration 1)."""
        return self.excitation.current(strength * self.brho * self.polarity)
