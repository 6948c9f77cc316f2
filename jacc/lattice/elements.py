"""The element set of the hardware description (DESIGN.md layer 1).

Field names and units follow MAD-X (see the names table of DESIGN.md); strengths are
normalised to the reference rigidity, charge sign included, as in MAD-X.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, Union

from pydantic import Field, field_validator, model_validator

from .base import Element, check_finite_list


def _kind(name: str):
    return Field(default=name, frozen=True, description="element type (discriminator)")


class Drift(Element):
    """Field-free space of length ``l`` [m]."""

    element_name: Literal["Drift"] = _kind("Drift")


class Marker(Element):
    """A named point of zero length (may carry an aperture)."""

    element_name: Literal["Marker"] = _kind("Marker")
    thin: ClassVar[bool] = True


class Monitor(Element):
    """Beam position monitor (BPM); a monitor of length ``l`` acts as a drift."""

    element_name: Literal["Monitor"] = _kind("Monitor")


class Quadrupole(Element):
    """Thick quadrupole: normal ``k1`` and skew ``k1s`` gradients [1/m^2]."""

    element_name: Literal["Quadrupole"] = _kind("Quadrupole")
    k1: float = Field(default=0.0, description="normal quadrupole strength [1/m^2]")
    k1s: float = Field(default=0.0, description="skew quadrupole strength [1/m^2]")


class _BendFields(Element):
    angle: float = Field(default=0.0, description="bending angle [rad]")
    k1: float = Field(default=0.0, description="normal quadrupole component [1/m^2]")
    k2: float = Field(default=0.0, description="normal sextupole component [1/m^3]")
    e1: float = Field(default=0.0, description="entrance pole-face angle [rad]")
    e2: float = Field(default=0.0, description="exit pole-face angle [rad]")
    fint: float = Field(default=0.0, description="entrance fringe-field integral")
    fintx: float | None = Field(default=None, description="exit fringe-field integral (defaults to fint)")
    gap: float = Field(default=0.0, ge=0.0, description="full magnet gap [m] (MAD-X hgap = gap/2)")
    h_pole1: float = Field(default=0.0, description="entrance pole-face curvature [1/m]")
    h_pole2: float = Field(default=0.0, description="exit pole-face curvature [1/m]")

    @model_validator(mode="after")
    def _bend_checks(self):
        if self.fintx is None:
            object.__setattr__(self, "fintx", self.fint)
        if self.angle != 0.0 and self.l == 0.0:
            raise self.error(f"field 'l': a bend with angle {self.angle} needs a length > 0")
        return self


class SBend(_BendFields):
    """Sector bend: ``l`` is the arc length [m]; combined-function ``k1``, ``k2``."""

    element_name: Literal["SBend"] = _kind("SBend")


class RBend(_BendFields):
    """Rectangular bend as in MAD-X: ``l`` is the chord length [m]; s advances by the arc.

    ``e1``, ``e2`` are the extra pole-face angles added to the rectangular angle/2, as MAD-X.
    """

    element_name: Literal["RBend"] = _kind("RBend")

    @model_validator(mode="after")
    def _chord(self):
        if abs(self.angle) >= math.pi:
            raise self.error(f"field 'angle': |angle| must be below pi for an rbend, got {self.angle}")
        return self

    @property
    def path_length(self) -> float:
        half = 0.5 * self.angle
        return self.l if half == 0.0 else self.l * half / math.sin(half)


class DipoleEdge(Element):
    """Thin dipole edge (MAD-X ``dipedge``): edge focusing and fringe of a bend face."""

    element_name: Literal["DipoleEdge"] = _kind("DipoleEdge")
    thin: ClassVar[bool] = True
    h: float = Field(default=0.0, description="curvature of the bend this edge belongs to [1/m]")
    e1: float = Field(default=0.0, description="pole-face angle [rad]")
    gap: float = Field(default=0.0, ge=0.0, description="full magnet gap [m] (MAD-X hgap = gap/2)")
    fint: float = Field(default=0.0, description="fringe-field integral")
    side: Literal["entry", "exit"] = Field(default="entry", description="which face of the bend")


class Sextupole(Element):
    """Thick sextupole: normal ``k2`` and skew ``k2s`` [1/m^3]."""

    element_name: Literal["Sextupole"] = _kind("Sextupole")
    k2: float = Field(default=0.0, description="normal sextupole strength [1/m^3]")
    k2s: float = Field(default=0.0, description="skew sextupole strength [1/m^3]")


class Octupole(Element):
    """Thick octupole: normal ``k3`` and skew ``k3s`` [1/m^4]."""

    element_name: Literal["Octupole"] = _kind("Octupole")
    k3: float = Field(default=0.0, description="normal octupole strength [1/m^4]")
    k3s: float = Field(default=0.0, description="skew octupole strength [1/m^4]")


class Multipole(Element):
    """Thin multipole: integrated normal ``knl[n]`` [1/m^n] and skew ``ksl[n]``, any order.

    ``knl[0]`` is the horizontal dipole field (MAD-X sign: a positive knl[0] kicks to -x);
    ``angle`` [rad] bends the reference orbit (Xsuite ``hxl``) and defaults to ``knl[0]`` (MAD-X:
    a dipole field matched by the reference bend leaves the on-momentum orbit straight). A field
    differing from the bend kicks the orbit by ``angle - knl[0]``: a dipole field error, or a
    MAD-X ``angle`` unequal to ``knl[0]``. ``lrad`` [m] is the nominal length used for
    curvature effects only (as MAD-X).
    """

    element_name: Literal["Multipole"] = _kind("Multipole")
    thin: ClassVar[bool] = True
    knl: list[float] = Field(default_factory=list, description="integrated normal strengths k_n*l [1/m^n]")
    ksl: list[float] = Field(default_factory=list, description="integrated skew strengths [1/m^n]")
    lrad: float = Field(default=0.0, ge=0.0, description="nominal length for curvature effects [m]")
    angle: float | None = Field(default=None, allow_inf_nan=False,
                                description="bending angle of the reference orbit [rad] "
                                            "(None: knl[0]); geometry, not differentiable")

    @field_validator("knl", "ksl")
    @classmethod
    def _finite(cls, v, info):
        return check_finite_list(v, info.field_name)

    @classmethod
    def numeric_fields(cls) -> tuple[str, ...]:
        # angle is geometry: a static option of the compiled kernel (None follows knl[0])
        return tuple(f for f in super().numeric_fields() if f != "angle")

    @property
    def order(self) -> int:
        """Highest multipole order present (0 = dipole)."""
        return max(len(self.knl), len(self.ksl), 1) - 1


class _Kicker(Element):
    xangle: float = Field(default=0.0, description="horizontal kick [rad] (MAD-X hkick)")
    yangle: float = Field(default=0.0, description="vertical kick [rad] (MAD-X vkick)")


class HKicker(_Kicker):
    """Horizontal orbit corrector (MAD-X ``hkicker``); only ``xangle`` is used."""

    element_name: Literal["HKicker"] = _kind("HKicker")

    @model_validator(mode="after")
    def _only_x(self):
        if self.yangle != 0.0:
            raise self.error("field 'yangle': an HKicker kicks horizontally only; use HVCorrector")
        return self


class VKicker(_Kicker):
    """Vertical orbit corrector (MAD-X ``vkicker``); only ``yangle`` is used."""

    element_name: Literal["VKicker"] = _kind("VKicker")

    @model_validator(mode="after")
    def _only_y(self):
        if self.xangle != 0.0:
            raise self.error("field 'xangle': a VKicker kicks vertically only; use HVCorrector")
        return self


class HVCorrector(_Kicker):
    """Combined horizontal and vertical corrector (MAD-X ``kicker``)."""

    element_name: Literal["HVCorrector"] = _kind("HVCorrector")


class Solenoid(Element):
    """Solenoid with ``ks`` = B_s / (B rho) [1/m] (MAD-X ``ks``)."""

    element_name: Literal["Solenoid"] = _kind("Solenoid")
    ks: float = Field(default=0.0, description="solenoid strength B_s/(B rho) [1/m]")


class RFCavity(Element):
    """RF cavity, thin (``l`` = 0) or thick (drift-kick-drift).

    Frequency is given either as ``frequency`` [Hz] or as ``harmon`` (harmonic number of the
    revolution frequency); ``lag`` is in units of 2 pi as in MAD-X.
    """

    element_name: Literal["RFCavity"] = _kind("RFCavity")
    voltage: float = Field(default=0.0, description="peak voltage [V]")
    frequency: float = Field(default=0.0, ge=0.0, description="RF frequency [Hz] (0: from harmon)")
    harmon: int = Field(default=0, ge=0, description="harmonic number (used when frequency is 0)")
    lag: float = Field(default=0.0, description="RF phase lag [units of 2 pi] (MAD-X lag)")


class NonlinearLens(Element):
    """IOTA Danilov-Nagaitsev nonlinear lens, thin (MAD-X ``nllens``).

    ``knll`` [m] is the integrated strength, ``cnll`` [m] the dimensional parameter c.
    """

    element_name: Literal["NonlinearLens"] = _kind("NonlinearLens")
    thin: ClassVar[bool] = True
    knll: float = Field(default=0.0, description="integrated strength t*c^2/beta [m]")
    cnll: float = Field(default=1.0, gt=0.0, description="dimensional parameter c [m]")


class FieldMap(Element):
    """Element described by an on-axis field profile, integrated numerically (diffrax).

    ``z`` [m] (from the element entrance, increasing, within [0, l]) and ``bz`` [T] sample the
    on-axis longitudinal field of a solenoid-like map.
    """

    element_name: Literal["FieldMap"] = _kind("FieldMap")
    z: list[float] = Field(default_factory=list, description="sample positions from the entrance [m]")
    bz: list[float] = Field(default_factory=list, description="on-axis longitudinal field [T]")

    @model_validator(mode="after")
    def _grid(self):
        check_finite_list(self.z, "z")
        check_finite_list(self.bz, "bz")
        if len(self.z) != len(self.bz):
            raise self.error(f"field 'bz': {len(self.bz)} samples for {len(self.z)} positions")
        if any(b <= a for a, b in zip(self.z, self.z[1:])):
            raise self.error("field 'z': positions must increase strictly")
        return self


class NonlinearInsertField(Element):
    """Thick Danilov-Nagaitsev insert: the continuum limit of thin `NonlinearLens` slices.

    Through the element the beta function (both planes) is ``beta(s) = beta_c + (s - s_c)^2 /
    beta_c``, ``s`` from the entrance; the lens strength per metre is ``t c^2 / beta(s)`` and
    its scale ``c sqrt(beta(s))`` [m]. Integrated in ``n_steps`` symplectic (leapfrog) steps
    with diffrax. ``s_c`` defaults to ``l / 2`` (a whole insert centred on its waist); a piece
    of an insert gives its own. `from_mu0` builds it from the insert's phase advance.
    """

    element_name: Literal["NonlinearInsertField"] = _kind("NonlinearInsertField")
    t: float = Field(default=0.0, description="dimensionless strength (stable for 0 <= t < 0.5)")
    c: float = Field(default=0.01, gt=0.0, description="dimensional parameter [m^(1/2)]")
    beta_c: float = Field(default=1.0, gt=0.0, description="beta function at the waist [m]")
    s_c: float | None = Field(default=None, description="waist position from the entrance [m] "
                                                        "(None at construction: l / 2)")
    n_steps: int = Field(default=64, ge=1, le=100000, description="integration steps over the element")

    @model_validator(mode="after")
    def _centre(self):
        if self.s_c is None:
            object.__setattr__(self, "s_c", 0.5 * self.l)
        return self

    @classmethod
    def from_mu0(cls, name: str, l: float, mu0: float, **fields) -> "NonlinearInsertField":
        """A whole insert of length ``l`` [m] and phase advance ``mu0`` [2 pi] (0 < mu0 < 1/2):
        ``beta_c = l / (2 tan(pi mu0))``, waist at the centre."""
        if not 0.0 < mu0 < 0.5:
            raise ValueError(f"NonlinearInsertField '{name}': field 'mu0': must lie in (0, 0.5), got {mu0!r}")
        return cls(name=name, l=l, beta_c=l / (2.0 * math.tan(math.pi * mu0)), **fields)

    @property
    def mu0(self) -> float:
        """Phase advance [2 pi] through the element: ``int ds / beta / (2 pi)``."""
        a = math.atan((self.l - self.s_c) / self.beta_c) + math.atan(self.s_c / self.beta_c)
        return a / (2.0 * math.pi)


class RectangularAperture(Element):
    """Thin rectangular aperture: half widths ``a`` (x) and ``b`` (y) [m]."""

    element_name: Literal["RectangularAperture"] = _kind("RectangularAperture")
    thin: ClassVar[bool] = True
    a: float = Field(gt=0.0, description="horizontal half width [m]")
    b: float = Field(gt=0.0, description="vertical half width [m]")


class EllipticalAperture(Element):
    """Thin elliptical aperture: semi-axes ``a`` (x) and ``b`` (y) [m]."""

    element_name: Literal["EllipticalAperture"] = _kind("EllipticalAperture")
    thin: ClassVar[bool] = True
    a: float = Field(gt=0.0, description="horizontal semi-axis [m]")
    b: float = Field(gt=0.0, description="vertical semi-axis [m]")


ELEMENT_TYPES: tuple[type[Element], ...] = (
    Drift, Marker, Monitor, Quadrupole, SBend, RBend, DipoleEdge, Sextupole, Octupole,
    Multipole, HKicker, VKicker, HVCorrector, Solenoid, RFCavity, NonlinearLens, FieldMap,
    NonlinearInsertField, RectangularAperture, EllipticalAperture,
)
ELEMENTS_BY_NAME: dict[str, type[Element]] = {
    cls.model_fields["element_name"].default: cls for cls in ELEMENT_TYPES
}

AnyElement = Annotated[Union[tuple(ELEMENT_TYPES)], Field(discriminator="element_name")]


def element_from_dict(data: dict) -> Element:
    """Build an element from a dict with an ``element_name`` key; unknown types are named."""
    if not isinstance(data, dict):
        raise TypeError(f"an element is described by a dict, got {type(data).__name__}")
    kind = data.get("element_name")
    cls = ELEMENTS_BY_NAME.get(kind)
    if cls is None:
        raise ValueError(
            f"element '{data.get('name', '?')}': unknown element type {kind!r}; "
            f"known types: {sorted(ELEMENTS_BY_NAME)}"
        )
    return cls.model_validate(data)
