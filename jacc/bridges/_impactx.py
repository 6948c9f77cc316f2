"""Synthesis of a JACC lattice into ImpactX element objects (``impactx.elements``).

ImpactX implements most elements at three fidelity tiers: linear maps (``Drift``, ``Quad``,
``Sbend``, ``CFbend``, ``Sol``), paraxial ones with chromatic terms (``ChrDrift``,
``ChrQuad``, ``ChrAcc``) and exact ones (``ExactDrift``, ``ExactQuad``, ``ExactSbend``,
``ExactCFbend``, ``ExactMultipole``). `ImpactXExporterConfig.model` picks the tier; families
without that tier take the next one up (ImpactX has no paraxial bend and no linear
sextupole: thick sextupoles and octupoles are ``ExactMultipole`` in every tier). With
``model="linear"`` (and ``rf_model="auto"``) the exported line tracks like JACC with
`jacc.Linear()` for every element type (`ImpactXExporterConfig.linear_preset`).

Conventions (see `jacc.particles`): ImpactX's ``t`` and ``pt`` are MAD-X's with the sign
flipped; roll angles are given to ImpactX in degrees; ``dx``, ``dy``, ``tilt`` + ``dtilt``
become each element's ``dx``, ``dy``, ``rotation`` (shift, then roll: JACC's convention).
Names: each placement keeps its name, made unique as xtrack's MAD-X import does
(`jacc.bridges._names`). Where one JACC element becomes several ImpactX elements, the extra
pieces carry suffixes: ``_edge_entry``/``_edge_exit`` (bend faces), ``_drift_in``/
``_drift_out`` (thick kickers and cavities), ``_drift`` (a thick monitor's length), ``_aper``
(an aperture); a thin multipole of several orders becomes ``<name>_m<n>``, one per order n
(ImpactX counts from 1, the dipole).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import scipy.constants as const
from pydantic import BaseModel, ConfigDict, Field

from jacc.lattice import Lattice
from jacc.particles import ReferenceParticle

from ._names import NameRegistry, check_inputs
from ._watchpoint import ImpactXWatchpoint, WatchpointConfig

__all__ = ["ImpactXExporter", "ImpactXExporterConfig", "ImpactXLine"]

_CODE = "ImpactX"
_DEG = 180.0 / math.pi


class ImpactXExporterConfig(BaseModel):
    """How the description is synthesised into ImpactX elements.

    Attributes:
        model: fidelity tier of drifts, quadrupoles, bend bodies and solenoids:
            ``"linear"`` (``Drift``, ``Quad``, ``Sbend``/``CFbend``, ``Sol``),
            ``"paraxial"`` (``ChrDrift``, ``ChrQuad``, exact bends, ``ChrAcc``) or
            ``"exact"`` (``ExactDrift``, ``ExactQuad``, ``ExactSbend``/``ExactCFbend``,
            ``ChrAcc``: ImpactX 26.10 has no exact solenoid).
        edge_model: ImpactX ``DipEdge`` model of bend faces and thin dipole edges:
            ``"linear"`` or ``"nonlinear"`` (ImpactX's soft-edge fringe map, which has no
            JACC counterpart: 3.5e-4 m from JACC's linear edges on the IOTA injector line;
            ImpactX's reference particle follows it, ``modify_ref_part=True``).
        edge_fringe: ``"madx"``: the linear edge's fringe integral is set so that ImpactX's
            vertical edge focusing equals MAD-X's (and Xsuite's and JACC's)
            ``-h tan(e - psi)`` exactly; ImpactX's own formula is its first order in psi,
            which differs by ``~h psi^2 tan(e)`` (7e-4 /m on the IOTA injector's bends).
            ``"impactx"``: pass ``fint`` unchanged.
        rf_model: thin RF kick of a cavity: ``"short_rf"`` (ImpactX ``ShortRF``: the
            sinusoidal kick, as JACC's default), ``"linear_map"`` (a ``LinearMap`` with the
            kick's exact linearisation, as JACC's ``Linear()``), ``"buncher"`` (ImpactX
            ``Buncher``: linear, with the transverse RF focusing JACC does not model), or
            ``"auto"``: ``"linear_map"`` for ``model="linear"``, else ``"short_rf"``.
        n_slices: ImpactX ``nslice`` of thick elements (space-charge and diagnostic steps).
        int_order, mapsteps: integrator order (2, 4, 6) and steps per slice of the exact
            multipole-type elements (``ExactQuad``, ``ExactCFbend``, ``ExactMultipole``).
        default_monitor_type: what a `Monitor` becomes: ``"marker"`` (``Marker``),
            ``"custom"`` (an in-memory `ImpactXWatchpoint`) or ``"beam_monitor"`` (ImpactX's
            ``BeamMonitor``, which writes openPMD files).
        watchpoint: the watchpoints' `WatchpointConfig` (mode, interval, buffer length).
        install_apertures: install element apertures and aperture elements as ImpactX
            ``Aperture`` elements; if False, aperture elements become markers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["linear", "paraxial", "exact"] = Field(default="linear")
    edge_model: Literal["linear", "nonlinear"] = Field(default="linear")
    edge_fringe: Literal["madx", "impactx"] = Field(default="madx")
    rf_model: Literal["auto", "short_rf", "linear_map", "buncher"] = Field(default="auto")
    n_slices: int = Field(default=1, ge=1, description="ImpactX nslice of thick elements")
    int_order: Literal[2, 4, 6] = Field(default=2)
    mapsteps: int = Field(default=10, ge=1)
    default_monitor_type: Literal["marker", "custom", "beam_monitor"] = Field(default="marker")
    watchpoint: WatchpointConfig = Field(default_factory=WatchpointConfig)
    install_apertures: bool = Field(default=True)

    @property
    def rf(self) -> str:
        """The RF model in force (``rf_model`` with ``"auto"`` resolved)."""
        if self.rf_model != "auto":
            return self.rf_model
        return "linear_map" if self.model == "linear" else "short_rf"

    @staticmethod
    def linear_preset():
        """JACC's preset with `jacc.Linear()` for every element type: what ``model="linear"``
        (with ``edge_model="linear"``, ``edge_fringe="madx"``, ``rf_model="auto"``)
        reproduces, for lattices without sextupoles, octupoles and nonlinear lenses."""
        import jacc

        kinds = [k for k in jacc.Xsuite().models if k not in ("FieldMap", "NonlinearInsertField")]
        return jacc.Xsuite(methods={k: jacc.Linear() for k in kinds})


class ImpactXLine(list):
    """The exported ImpactX elements (a plain list) with the watchpoints placed in it.

    Attributes:
        watchpoints: `ImpactXWatchpoint` by monitor placement name, in order along s.
        names: the name of every element of the list.
    """

    def __init__(self, elements=(), names=(), watchpoints=None):
        super().__init__(elements)
        self.names = list(names)
        self.watchpoints: dict[str, ImpactXWatchpoint] = dict(watchpoints or {})


class ImpactXExporter:
    """Writes a JACC `Lattice` as a list of ImpactX element objects (ImpactX 26.10).

    Example::

        cfg = ImpactXExporterConfig(model="linear", default_monitor_type="custom")
        line = ImpactXExporter(config=cfg).write_lattice(lat, rp)
        sim.lattice.extend(line)          # an impactx.ImpactX simulation
        line.watchpoints["bpm1"].centroids

    Elements without an ImpactX counterpart raise ``NotImplementedError`` naming the
    element and ImpactX: ``FieldMap``; a thin ``Multipole`` with ``knl[0] != 0`` (its dipole
    term bends the reference orbit in MAD-X and JACC); a cavity that changes the reference
    particle's energy (ImpactX then moves its reference, JACC keeps ``p0``); a thin
    solenoid with a field.
    """

    def __init__(self, config: ImpactXExporterConfig | None = None):
        self.config = ImpactXExporterConfig() if config is None else config

    def write_lattice(self, lat: Lattice, rp: ReferenceParticle) -> ImpactXLine:
        """The ImpactX elements of ``lat`` for reference particle ``rp``, in order along s."""
        check_inputs("ImpactXExporter.write_lattice", lat, rp)
        from ._impactx_elements import convert

        out = ImpactXLine()
        ctx = _Context(self.config, rp, lat.length, NameRegistry(), out)
        for i in range(len(lat.line)):
            convert(ctx, lat.element_at(i))
        return out


class _Context:
    """What element conversion needs: config, reference particle, ring length, the output."""

    def __init__(self, config, rp, length, reg, out: ImpactXLine):
        self.config, self.rp, self.length, self.reg, self.out = config, rp, length, reg, out

    def add(self, name: str, make) -> str:
        """Append ``make(name=unique_name)``; returns the unique name."""
        unique = self.reg.take(name)
        self.out.append(make(name=unique))
        self.out.names.append(unique)
        return unique

    @property
    def mc2(self) -> float:
        """Rest energy [eV]."""
        return self.rp.mass0

    def frequency(self, el) -> float:
        """RF frequency [Hz]: ``frequency``, or ``harmon`` times the revolution frequency."""
        if el.frequency != 0.0 or el.harmon == 0:
            return el.frequency
        return el.harmon * self.rp.beta0 * const.c / self.length


def linear_edge_fint(h: float, e: float, gap: float, fint: float) -> float:
    """The fringe integral ``K2`` for which ImpactX's linear ``DipEdge`` gives MAD-X's edge.

    MAD-X (Xsuite, JACC): ``r43 = -h tan(e - psi)``, ``psi = h gap fint (1 + sin^2 e) / cos e``.
    ImpactX: ``r43 = -h tan(e) + h^2 gap K2 (1 + sin^2 e) / cos^3 e``.

    Args:
        h: curvature [1/m]; e: pole-face angle [rad]; gap: full gap [m]; fint: MAD-X fint.
    """
    if h == 0.0 or gap == 0.0 or fint == 0.0:
        return fint
    s, c = math.sin(e), math.cos(e)
    psi = h * gap * fint * (1.0 + s * s) / c
    r43 = -h * math.tan(e - psi)
    return (r43 + h * math.tan(e)) * c ** 3 / ((1.0 + s * s) * gap * h * h)


def linear_map(matrix_madx) -> object:
    """An ImpactX ``Map6x6`` from a 6x6 matrix in MAD-X coordinates (t, pt signs flipped)."""
    from impactx import Map6x6

    flip = np.array([1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
    m = np.asarray(matrix_madx, dtype=float) * flip[:, None] * flip[None, :]
    out = Map6x6.identity()
    for i in range(6):
        for j in range(6):
            out[i + 1, j + 1] = float(m[i, j])  # Map6x6 is indexed from 1
    return out
