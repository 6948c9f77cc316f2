"""Typed ports of a simulation model: what crosses a model boundary, and how it is processed.

A port declares the kind of value (``type``), its element type (``dtype``), the coordinate
system of phase-space values, the reference particle they are relative to, their shape, and
processors applied at the boundary. Values by type:

- ``scalar``: a float (a 0-d array); ``vector``: an array of floats of ``shape``;
- ``coordinates``: an ``(n, 6)`` array of particle coordinates in ``coordinate_system``;
- ``reference_particle``: a `jacc.ReferenceParticle`;
- ``envelope``: a `jacc.Envelope` (6x6 covariance and centroid);
- ``twiss``: a `jacc.TwissInit` (optics functions at one point) or a Twiss table.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from jacc.particles import ReferenceParticle

__all__ = ["Port", "ProcessorOffsetMultiply", "Processor", "PortType", "check_connection"]

PortType = Literal["scalar", "vector", "coordinates", "reference_particle", "envelope", "twiss"]
CoordinateSystem = Literal["madx", "impactx", "xsuite"]
# types whose values are relative to a reference particle
WITH_REFERENCE = ("coordinates", "reference_particle", "envelope", "twiss")
WITH_FRAME = ("coordinates", "envelope")
ARRAY_TYPES = ("scalar", "vector", "coordinates")


class ProcessorOffsetMultiply(BaseModel):
    """``value -> (value + offset) * multiply``, element-wise (broadcast along the last axis).

    On an input port it maps what the caller gives (e.g. a power-supply current [A]) to
    what the engine takes (e.g. a quadrupole ``k1`` [1/m^2]); on an output port it maps
    the engine's value to what is reported (e.g. a BPM's offset and gain). Differentiable.

    Attributes:
        offset: added first (a number, or one per element of the last axis).
        multiply: then multiplied by (a number, or one per element of the last axis).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["offset_multiply"] = "offset_multiply"
    offset: float | list[float] = 0.0
    multiply: float | list[float] = 1.0

    def __call__(self, value):
        return (value + jnp.asarray(self.offset, dtype=float)) * jnp.asarray(self.multiply, dtype=float)


Processor = Annotated[Union[ProcessorOffsetMultiply], Field(discriminator="type")]


class Port(BaseModel):
    """One input or output of a simulation model.

    Attributes:
        type: ``scalar``, ``vector``, ``coordinates``, ``reference_particle``, ``envelope``
            or ``twiss`` (see the module docstring for the values of each).
        dtype: element type of array values (``float64``; ``bool`` for flags).
        coordinate_system: phase-space convention of ``coordinates`` and ``envelope``
            values: ``madx`` (``x, px, y, py, t, pt``; the default), ``impactx`` (``t``,
            ``pt`` of opposite sign) or ``xsuite`` (``zeta, delta``). None for other types.
        reference_particle: the reference particle of a phase-space, envelope, Twiss or
            reference-particle port; None: the model's own (from its lattice).
        shape: array shape, None for any extent (``[null, 6]``: any number of particles);
            None for no constraint.
        unit: unit of the value, e.g. ``"m"``, ``"1/m^2"``, ``"s"`` (free text).
        description: free text.
        default: value of an input nobody provides (a number or nested list); None: none
            (model parameters default to the lattice's values).
        processors: applied in order at the boundary (inputs: before the engine; outputs:
            after it).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    type: PortType
    dtype: Literal["float64", "bool"] = "float64"
    coordinate_system: CoordinateSystem | None = None
    reference_particle: ReferenceParticle | None = None
    shape: list[int | None] | None = None
    unit: str = ""
    description: str = ""
    default: float | list | None = None
    processors: list[Processor] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self):
        if self.type in WITH_FRAME and self.coordinate_system is None:
            self.coordinate_system = "madx"
        if self.type not in WITH_FRAME and self.coordinate_system is not None:
            raise ValueError(f"a {self.type} port has no coordinate system "
                             f"(only {list(WITH_FRAME)} ports do), got {self.coordinate_system!r}")
        if self.type == "envelope" and self.coordinate_system == "xsuite":
            raise ValueError("an envelope port is in madx or impactx coordinates (Xsuite's delta "
                             "is not linear in pt)")
        if self.type == "scalar" and self.shape not in (None, []):
            raise ValueError(f"a scalar port has shape [], got {self.shape}")
        if self.type == "coordinates" and self.shape is not None and (
                len(self.shape) != 2 or self.shape[1] not in (6, None)):
            raise ValueError(f"a coordinates port has shape [n, 6], got {self.shape}")
        if self.processors and self.type not in ARRAY_TYPES:
            raise ValueError(f"processors apply to scalar, vector and coordinates ports, not {self.type}")
        if self.reference_particle is not None and self.type not in WITH_REFERENCE:
            raise ValueError(f"a {self.type} port carries no reference particle")
        return self

    def check_value(self, value, where: str):
        """``value`` as the port takes it (arrays as float64 NumPy/JAX arrays); raises
        ``ValueError``/``TypeError`` naming ``where`` (``model.port``) when it does not fit."""
        if self.type in ARRAY_TYPES:
            arr = value if hasattr(value, "shape") and hasattr(value, "dtype") else np.asarray(value)
            if self.dtype == "float64" and arr.dtype != np.float64:
                arr = arr.astype(np.float64) if isinstance(arr, np.ndarray) else jnp.asarray(arr, float)
            if self.type == "scalar" and arr.shape != ():
                raise ValueError(f"{where}: a scalar is expected, got shape {tuple(arr.shape)}")
            if self.type == "coordinates" and (arr.ndim != 2 or arr.shape[1] != 6):
                raise ValueError(f"{where}: coordinates of shape (n, 6) are expected, got {tuple(arr.shape)}")
            if not shape_fits(self.shape, tuple(arr.shape)):
                raise ValueError(f"{where}: shape {list(arr.shape)} does not fit the port's {self.shape}")
            return arr
        return _check_object(self.type, value, where)

    def process(self, value):
        for p in self.processors:
            value = p(value)
        return value


def _check_object(kind: str, value, where: str):
    import jacc

    expected = {"reference_particle": (jacc.ReferenceParticle,), "envelope": (jacc.Envelope,),
                "twiss": (jacc.TwissInit, jacc.Twiss, jacc.TwissTable)}[kind]
    if not isinstance(value, expected):
        names = " or ".join(f"jacc.{t.__name__}" for t in expected)
        raise TypeError(f"{where}: a {kind} port takes a {names}, got {type(value).__name__}")
    return value


def shape_fits(declared, actual) -> bool:
    """Whether an actual shape fits a declared one (None: any extent; declared None: any)."""
    if declared is None:
        return True
    return len(declared) == len(actual) and all(d is None or d == a for d, a in zip(declared, actual))


def shapes_compatible(a, b) -> bool:
    """Whether two declared shapes can hold the same value."""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def same_reference(a: ReferenceParticle, b: ReferenceParticle) -> bool:
    """Same species, charge, mass and momentum (1e-12 relative: a saved particle's rounding)."""
    def close(u, v):
        return abs(u - v) <= 1e-12 * max(abs(u), abs(v))

    return a.species == b.species and a.charge == b.charge and close(a.mass0, b.mass0) and close(a.p0c, b.p0c)


def check_connection(out_name: str, out: Port, out_rp, in_name: str, inp: Port, in_rp) -> None:
    """Raise ``ValueError`` naming both ports when output ``out`` cannot feed input ``inp``.

    ``out_rp``/``in_rp``: the reference particles the ports resolve to (None: unknown).
    """
    def fail(why):
        raise ValueError(f"output '{out_name}' cannot feed input '{in_name}': {why}")

    if out.type != inp.type:
        fail(f"type {out.type!r} != {inp.type!r}")
    if out.dtype != inp.dtype:
        fail(f"dtype {out.dtype!r} != {inp.dtype!r}")
    if out.coordinate_system != inp.coordinate_system:
        fail(f"coordinate system {out.coordinate_system!r} != {inp.coordinate_system!r}")
    if out.type in WITH_REFERENCE and out_rp is not None and in_rp is not None \
            and not same_reference(out_rp, in_rp):
        fail(f"reference particle {_rp(out_rp)} != {_rp(in_rp)}")
    if not shapes_compatible(out.shape, inp.shape):
        fail(f"shape {out.shape} != {inp.shape}")


def _rp(rp: ReferenceParticle) -> str:
    return f"({rp.species}, p0c = {rp.p0c:.10g} eV, mass0 = {rp.mass0:.10g} eV)"
