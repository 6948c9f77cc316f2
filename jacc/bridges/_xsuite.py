"""Synthesis of a JACC lattice into an Xsuite line (``xt.Line``).

Every element type of the description becomes the xtrack element that xtrack's own MAD-X
import (``xt.Line.from_madx_sequence``) would build for the same MAD-X element, with the
settings the JACC presets reproduce (see the physics files of ``jacc.physics``, each of which
names the xtrack model it follows). Tracking the exported line with xtrack then agrees with
``jacc.track`` under `XsuiteExporterConfig.preset` to rounding.

Names: each placement becomes one element named after its definition, made unique the way
xtrack's MAD-X import does (``qf``, then ``qf:0``, ``qf:1``...; see `jacc.bridges._names`).
An element's aperture is a separate element ``<name>_aper`` placed before it, as xtrack's
import does; misalignments are xtrack's ``shift_x``, ``shift_y``, ``rot_s_rad``.
"""

from __future__ import annotations

import math
from typing import Literal

import scipy.constants as const
from pydantic import BaseModel, ConfigDict, Field

from jacc.lattice import Lattice
from jacc.particles import ReferenceParticle

from ._names import NameRegistry, check_inputs

__all__ = ["XsuiteExporter", "XsuiteExporterConfig"]

_CODE = "Xsuite"
# elements JACC's engine never misaligns (an aperture is checked in the reference frame)
_PASSIVE = ("Marker", "RectangularAperture", "EllipticalAperture")


class XsuiteExporterConfig(BaseModel):
    """How the description is synthesised into xtrack elements.

    Attributes:
        edge_model: ``"linear"`` (xtrack's default; JACC preset ``Xsuite()``) or ``"full"``
            (``line.configure_bend_model(edge='full')`` and full thin dipole edges; JACC
            preset ``XsuiteFullEdge()``) for bend faces and ``DipoleEdge`` elements.
        bend_model: ``"adaptive"`` (xtrack's default, 'rot-kick-rot' for bends; JACC's
            ``Xsuite()``) or ``"bend-kick-bend"`` (exact dipole flows; ``XsuiteExactBend()``).
        dipole_edge_side: ``"entry"``: every ``DipoleEdge`` is an entry face, as xtrack's
            MAD-X import makes them (and as ``XsuiteFullEdge()`` tracks them); ``"element"``:
            each edge keeps its ``side``. Only the full edge model depends on it.
        install_apertures: install element apertures and aperture elements as xtrack
            ``LimitRect``/``LimitEllipse``; if False, aperture elements become markers and
            element apertures are left out (particles are then never lost).
        curved_misalignment: ``"jacc"``: an offset bend is shifted by ``(dx, dy)`` at its
            entrance and back at its exit, each in its own face frame (as JACC's engine
            tracks it): explicit ``xt.Translation`` elements ``<name>_shift_in``/``_shift_out``
            around the bend. ``"xsuite"``: xtrack's own ``shift_x``/``shift_y`` of the bend,
            a rigid displacement of the curved magnet (the exit sees ``dx cos(angle)`` and a
            longitudinal offset ``dx sin(angle)``): not what JACC tracks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    edge_model: Literal["linear", "full"] = Field(default="linear", description="dipole edge model")
    bend_model: Literal["adaptive", "bend-kick-bend"] = Field(default="adaptive",
                                                              description="bend body model")
    dipole_edge_side: Literal["entry", "element"] = Field(default="entry",
                                                           description="face of thin dipole edges")
    install_apertures: bool = Field(default=True, description="export apertures")
    curved_misalignment: Literal["jacc", "xsuite"] = Field(
        default="jacc", description="how offsets of bends are synthesised")

    def preset(self):
        """The JACC preset that tracks like the exported line (``Xsuite()`` for the defaults)."""
        from ._xsuite_presets import matching_preset

        return matching_preset(self)


class XsuiteExporter:
    """Writes a JACC `Lattice` as an ``xt.Line`` (xtrack 0.118).

    Example::

        line = XsuiteExporter(config=XsuiteExporterConfig()).write_lattice(lat, rp)
        line.twiss4d()

    Element types without an xtrack counterpart (``FieldMap``; a thin ``Solenoid`` with a
    field) raise ``NotImplementedError`` naming the element and Xsuite.
    """

    def __init__(self, config: XsuiteExporterConfig | None = None):
        self.config = XsuiteExporterConfig() if config is None else config

    def write_lattice(self, lat: Lattice, rp: ReferenceParticle):
        """The ``xt.Line`` of ``lat`` with ``line.particle_ref`` set from ``rp``.

        Args:
            lat: the lattice (knob values as they are now; the line holds numbers).
            rp: the reference particle (mass, charge and momentum become ``particle_ref``).
        """
        import xtrack as xt

        check_inputs("XsuiteExporter.write_lattice", lat, rp)
        names, elements = [], []
        reg = NameRegistry()
        ctx = _Context(self.config, rp, lat.length)
        for i in range(len(lat.line)):
            el = lat.element_at(i)
            for name, obj in _convert(ctx, reg, el):
                names.append(name)
                elements.append(obj)
        line = xt.Line(elements=elements, element_names=names)
        line.particle_ref = xt.Particles(mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c)
        return line


class _Context:
    def __init__(self, config: XsuiteExporterConfig, rp: ReferenceParticle, length: float):
        self.config, self.rp, self.length = config, rp, length


def _convert(ctx: _Context, reg: NameRegistry, el) -> list[tuple[str, object]]:
    """``[(name, xtrack element), ...]`` of one placement, its aperture first."""
    import xtrack as xt

    out = []
    if el.aperture is not None and ctx.config.install_apertures:
        out.append((reg.take(f"{el.name}_aper"), _limit(el.aperture.shape, el.aperture.a, el.aperture.b)))
    builder = _BUILDERS.get(el.element_name)
    if builder is None:
        raise NotImplementedError(
            f"{el.element_name} '{el.name}': no {_CODE} counterpart; element types "
            f"{_CODE} export supports: {sorted(_BUILDERS)}")
    name = reg.take(el.name)
    obj = builder(ctx, el)
    tilt = el.tilt + el.dtilt
    curved = el.element_name in ("SBend", "RBend") and el.angle != 0.0
    if curved and (el.dx or el.dy) and ctx.config.curved_misalignment == "jacc":
        obj.rot_s_rad = tilt
        shift_in = xt.Translation(shift_x=el.dx, shift_y=el.dy)
        shift_out = xt.Translation(shift_x=-el.dx, shift_y=-el.dy)
        return out + [(reg.take(f"{el.name}_shift_in"), shift_in), (name, obj),
                      (reg.take(f"{el.name}_shift_out"), shift_out)]
    # xt.Drift has no offsets: a drift's map commutes with them (JACC's too)
    if (el.dx or el.dy or tilt) and el.element_name not in _PASSIVE and hasattr(obj, "rot_s_rad"):
        obj.shift_x, obj.shift_y, obj.rot_s_rad = el.dx, el.dy, tilt
    return out + [(name, obj)]


def _limit(shape: str, a: float, b: float):
    import xtrack as xt

    if shape == "rectangle":
        return xt.LimitRect(min_x=-a, max_x=a, min_y=-b, max_y=b)
    return xt.LimitEllipse(a=a, b=b)  # ellipse, or circle (b == a)


def _drift(ctx, el):
    import xtrack as xt

    return xt.Drift(length=el.l)


def _marker(ctx, el):
    import xtrack as xt

    return xt.Marker()


def _monitor(ctx, el):
    import xtrack as xt

    # xtrack's import makes monitors `Device`s: drift-like (expanded drift), any length
    return xt.Device(length=el.l)


def _quadrupole(ctx, el):
    import xtrack as xt

    return xt.Quadrupole(length=el.l, k1=el.k1, k1s=el.k1s)


def _bend_kwargs(ctx, el) -> dict:
    edge = ctx.config.edge_model
    return dict(
        angle=el.angle, k0_from_h=True, k1=el.k1, k2=el.k2,
        edge_entry_angle=el.e1, edge_exit_angle=el.e2,
        edge_entry_fint=el.fint, edge_exit_fint=el.fintx,
        edge_entry_hgap=0.5 * el.gap, edge_exit_hgap=0.5 * el.gap,
        edge_entry_model=edge, edge_exit_model=edge,
        model="adaptive" if ctx.config.bend_model == "adaptive" else "bend-kick-bend",
        knl=[0.0, 0.0, 0.0], num_multipole_kicks=0,
    )


def _sbend(ctx, el):
    import xtrack as xt

    return xt.Bend(length=el.l, **_bend_kwargs(ctx, el))


def _rbend(ctx, el):
    import xtrack as xt

    # xtrack's RBend takes the chord as length_straight and adds angle/2 to both edge
    # angles itself, as MAD-X (and JACC's rbend_to_sbend)
    return xt.RBend(length_straight=el.l, **_bend_kwargs(ctx, el))


def _dipole_edge(ctx, el):
    import xtrack as xt

    side = "entry" if ctx.config.dipole_edge_side == "entry" else el.side
    return xt.DipoleEdge(k=el.h, e1=el.e1, hgap=0.5 * el.gap, fint=el.fint,
                         model=ctx.config.edge_model, side=side)


def _sextupole(ctx, el):
    import xtrack as xt

    return xt.Sextupole(length=el.l, k2=el.k2, k2s=el.k2s)


def _octupole(ctx, el):
    import xtrack as xt

    return xt.Octupole(length=el.l, k3=el.k3, k3s=el.k3s)


def _multipole(ctx, el):
    import xtrack as xt

    n = max(len(el.knl), len(el.ksl), 1)
    knl = list(el.knl) + [0.0] * (n - len(el.knl))
    ksl = list(el.ksl) + [0.0] * (n - len(el.ksl))
    # the reference is bent by angle, knl[0] without one (MAD-X), as JACC's Multipole
    hxl = knl[0] if el.angle is None else el.angle
    return xt.Multipole(knl=knl, ksl=ksl, hxl=hxl, length=el.lrad)


def _kicker(ctx, el):
    import xtrack as xt

    # xtrack's import of (h/v)kicker and kicker: a dipole multipole without reference bend
    return xt.Multipole(knl=[-el.xangle], ksl=[el.yangle], hxl=0.0, length=el.l, isthick=el.l > 0)


def _solenoid(ctx, el):
    import xtrack as xt

    if el.l == 0.0:
        if el.ks != 0.0:
            raise NotImplementedError(
                f"Solenoid '{el.name}': a zero-length solenoid with ks = {el.ks} has no map in "
                f"JACC or {_CODE} (both need a length); give it a length")
        return xt.Drift(length=0.0)
    return xt.UniformSolenoid(length=el.l, ks=el.ks)


def _rf_frequency(ctx, el) -> float:
    if el.frequency != 0.0 or el.harmon == 0:
        return el.frequency
    # the harmonic of the reference particle's revolution frequency, as JACC's engine
    return el.harmon * ctx.rp.beta0 * const.c / ctx.length


def _rf_cavity(ctx, el):
    import xtrack as xt

    # xtrack's `phase` [rad] is MAD-X's lag [2 pi]; its `lag` [deg] is added and stays 0
    return xt.Cavity(length=el.l, voltage=el.voltage, frequency=_rf_frequency(ctx, el),
                     phase=2.0 * math.pi * el.lag, lag=0.0)


def _nonlinear_lens(ctx, el):
    import xtrack as xt

    return xt.NonLinearLens(knll=el.knll, cnll=el.cnll)


def _aperture_element(ctx, el):
    import xtrack as xt

    if not ctx.config.install_apertures:
        return xt.Marker()
    return _limit("rectangle" if el.element_name == "RectangularAperture" else "ellipse", el.a, el.b)


_BUILDERS = {
    "Drift": _drift, "Marker": _marker, "Monitor": _monitor, "Quadrupole": _quadrupole,
    "SBend": _sbend, "RBend": _rbend, "DipoleEdge": _dipole_edge, "Sextupole": _sextupole,
    "Octupole": _octupole, "Multipole": _multipole, "HKicker": _kicker, "VKicker": _kicker,
    "HVCorrector": _kicker, "Solenoid": _solenoid, "RFCavity": _rf_cavity,
    "NonlinearLens": _nonlinear_lens, "RectangularAperture": _aperture_element,
    "EllipticalAperture": _aperture_element,
}
