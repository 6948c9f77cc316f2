"""Reference particle, coordinate conventions and converters to other codes.

Coordinates (stated once for the whole project)
-----------------------------------------------
JACC uses MAD-X canonical coordinates ``(x, px, y, py, t, pt)`` at fixed ``s``:

* ``x``, ``y`` [m]: transverse offsets from the reference orbit;
* ``px``, ``py`` [1]: transverse canonical momenta divided by the reference momentum ``p0``;
* ``t`` [m]: ``-c * dt``, where ``dt`` is the arrival-time delay behind the reference particle
  (a particle ahead of the reference has ``t > 0``);
* ``pt`` [1]: ``dE / (p0 c)``, the energy deviation over the reference momentum times ``c``.

Other codes (converters below, each tested both ways):

* Xsuite: ``(x, px, y, py, zeta, delta)`` with ``zeta = beta0 * t`` [m] and
  ``delta = (p - p0) / p0``; Xsuite's ``tau = zeta / beta0`` is ``t`` and its ``ptau`` is ``pt``.
* ImpactX: ``(x, px, y, py, t, pt)`` with the opposite longitudinal signs:
  ``t = +c dt`` [m] and ``pt = -dE / (p0 c)``; transverse coordinates are the same.
* openPMD-beamphysics ``ParticleGroup``: absolute positions ``x, y, z`` [m], momenta
  ``px, py, pz`` [eV/c], time ``t`` [s], macro-charge ``weight`` [C], ``status`` (1 = alive).

Masses are CODATA 2022 (``scipy.constants``), as in Xsuite 0.118 (``xtrack.PROTON_MASS_EV``
agrees to one unit in the last place). MAD-X 5.09 uses CODATA 2018 masses
(``MASS_PROTON_CODATA2018_EV``, ``MASS_ELECTRON_CODATA2018_EV``); pass ``mass0=`` to match it.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.constants as _sc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from jacc.physics.base import Reference

C_LIGHT = _sc.c  # speed of light [m/s]
E_CHARGE = _sc.e  # elementary charge [C]

# CODATA 2022 through scipy (the seed's numbers are computed with these exact floats).
MASS_ELECTRON_EV = _sc.value("electron mass energy equivalent in MeV") * 1e6
MASS_PROTON_EV = _sc.value("proton mass energy equivalent in MeV") * 1e6
# CODATA 2018, the values in MAD-X 5.09 (emass = 0.00051099895 GeV, pmass = 0.93827208816 GeV).
MASS_ELECTRON_CODATA2018_EV = 510998.95
MASS_PROTON_CODATA2018_EV = 938272088.16

# species -> (rest energy [eV], charge [e]); other species (ions) need explicit mass0 and charge.
SPECIES: dict[str, tuple[float, float]] = {
    "electron": (MASS_ELECTRON_EV, -1.0),
    "positron": (MASS_ELECTRON_EV, 1.0),
    "proton": (MASS_PROTON_EV, 1.0),
    "antiproton": (MASS_PROTON_EV, -1.0),
}
_CODATA2018 = {
    "electron": MASS_ELECTRON_CODATA2018_EV,
    "positron": MASS_ELECTRON_CODATA2018_EV,
    "proton": MASS_PROTON_CODATA2018_EV,
    "antiproton": MASS_PROTON_CODATA2018_EV,
}


def codata2018_mass(species: str) -> float:
    """Rest energy [eV] of ``species`` in CODATA 2018 (MAD-X 5.09's value), to match that code."""
    try:
        return _CODATA2018[species]
    except KeyError:
        raise ValueError(
            f"codata2018_mass: unknown species {species!r}; known: {sorted(_CODATA2018)}"
        ) from None


# ----------------------------------------------------------------------------------------
# Reference particle
# ----------------------------------------------------------------------------------------

_ENERGY_FIELDS = ("p0c", "kin_energy0", "energy0", "gamma0", "beta0", "brho")


def _check_positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return v


def _species_constants(species: str, mass0, charge) -> tuple[float, float]:
    """Rest energy [eV] and charge [e] from the species table, overridden by explicit values."""
    if not isinstance(species, str) or not species:
        raise ValueError(f"species must be a non-empty string, got {species!r}")
    known = SPECIES.get(species)
    if known is None and (mass0 is None or charge is None):
        missing = " and ".join(n for n, v in (("mass0", mass0), ("charge", charge)) if v is None)
        raise ValueError(
            f"unknown species {species!r}: known species are {sorted(SPECIES)}; "
            f"other particles (ions) need explicit {missing} (mass0 [eV], charge [e])"
        )
    m = _check_positive("mass0", known[0] if mass0 is None else mass0)
    q = known[1] if charge is None else charge
    try:
        q = float(q)
    except (TypeError, ValueError):
        raise ValueError(f"charge must be a number (units of e), got {charge!r}") from None
    if not math.isfinite(q) or q == 0.0:
        raise ValueError(f"charge must be finite and nonzero (units of e), got {charge!r}")
    return m, q


def _derive(mass0: float, charge: float, field: str, value: float,
            label: str | None = None) -> dict[str, float]:
    """All energy-like quantities from one of them; the formulas keep E^2 = p^2 + m^2 to ulps.

    ``label`` names the argument in error messages (default: the field name).
    """
    m = mass0
    label = label or field
    value = _check_positive(label, value)
    if field == "kin_energy0":
        kin = value
        energy = m + kin
        p0c = math.sqrt(energy * energy - m * m)
    elif field == "energy0":
        if not value > m:
            raise ValueError(f"{label} = {value!r} eV must exceed the rest mass mass0 = {m!r} eV")
        energy = value
        kin = energy - m
        p0c = math.sqrt(energy * energy - m * m)
    elif field == "gamma0":
        if not value > 1.0:
            raise ValueError(f"{label} must be greater than 1, got {value!r}")
        energy = value * m
        kin = (value - 1.0) * m
        p0c = math.sqrt(energy * energy - m * m)
    elif field in ("p0c", "brho"):
        p0c = value if field == "p0c" else value * C_LIGHT * abs(charge)
        energy = math.hypot(p0c, m)
        kin = p0c * p0c / (energy + m)  # E - m without cancellation for slow particles
    elif field == "beta0":
        if not value < 1.0:
            raise ValueError(f"{label} must be below 1, got {value!r}")
        gamma = 1.0 / math.sqrt((1.0 - value) * (1.0 + value))
        energy = gamma * m
        p0c = value * energy
        kin = p0c * p0c / (energy + m)
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"unknown energy-like field {field!r}; use one of {_ENERGY_FIELDS}")
    return {
        "mass0": m,
        "charge": charge,
        "p0c": p0c,
        "kin_energy0": kin,
        "energy0": energy,
        "gamma0": energy / m,
        "beta0": p0c / energy,
        "brho": p0c / (C_LIGHT * abs(charge)),
    }


class ReferenceParticle(BaseModel):
    """The reference particle: species, charge, rest mass and its energy in every usual form.

    Build it from one energy-like quantity with the classmethods (``from_kinetic_energy``,
    ``from_energy``, ``from_p0c``, ``from_gamma``, ``from_brho``); all fields are then consistent
    to a few units in the last place. Validating a dict or JSON also works with only
    ``species`` (plus ``mass0``/``charge`` for ions) and exactly one energy-like field; with all
    fields given (a saved particle) they are checked for consistency and kept bit for bit.

    Attributes:
        species: ``"electron"``, ``"positron"``, ``"proton"``, ``"antiproton"``, or any name for
            a particle given by explicit ``mass0`` and ``charge`` (e.g. ``"Pb208+54"``).
        charge: charge in units of the elementary charge, signed.
        mass0: rest energy m c^2 [eV].
        p0c: reference momentum times c [eV].
        kin_energy0: kinetic energy [eV].
        energy0: total energy [eV].
        gamma0: relativistic gamma [1].
        beta0: relativistic beta [1].
        brho: magnetic rigidity p0 / |q| [T m].
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    species: str = Field(min_length=1, description="particle species name")
    charge: float = Field(description="charge [e], signed")
    mass0: float = Field(gt=0, description="rest energy [eV]")
    p0c: float = Field(gt=0, description="reference momentum times c [eV]")
    kin_energy0: float = Field(gt=0, description="kinetic energy [eV]")
    energy0: float = Field(gt=0, description="total energy [eV]")
    gamma0: float = Field(gt=1, description="relativistic gamma [1]")
    beta0: float = Field(gt=0, lt=1, description="relativistic beta [1]")
    brho: float = Field(gt=0, description="magnetic rigidity [T m]")

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data):
        # A hand-written dict or JSON may give one energy-like quantity; fill in the rest.
        if not isinstance(data, dict):
            return data
        given = [f for f in _ENERGY_FIELDS if data.get(f) is not None]
        if len(given) == len(_ENERGY_FIELDS):
            return data
        if len(given) != 1:
            raise ValueError(
                f"ReferenceParticle: give exactly one of {list(_ENERGY_FIELDS)} "
                f"(or all of them), got {given or 'none'}"
            )
        mass0, charge = _species_constants(data.get("species"), data.get("mass0"), data.get("charge"))
        return {"species": data["species"], **_derive(mass0, charge, given[0], data[given[0]])}

    @model_validator(mode="after")
    def _consistent(self):
        # Saved particles are kept bit for bit; 1e-12 catches hand-edited inconsistent files
        # while leaving room for the few-ulp rounding of the constructors.
        tol = 1e-12
        e, p, m = self.energy0, self.p0c, self.mass0
        checks = {
            "energy0^2 = p0c^2 + mass0^2": (e * e - p * p - m * m) / (e * e),
            "energy0 = mass0 + kin_energy0": (e - m - self.kin_energy0) / e,
            "gamma0 = energy0 / mass0": self.gamma0 * m / e - 1.0,
            "beta0 = p0c / energy0": self.beta0 * e / p - 1.0,
            "brho = p0c / (c |charge|)": self.brho * C_LIGHT * abs(self.charge) / p - 1.0,
        }
        bad = {k: v for k, v in checks.items() if not abs(v) <= tol}
        if bad:
            raise ValueError(f"ReferenceParticle fields are inconsistent (relative errors): {bad}")
        if self.charge == 0.0:
            raise ValueError("charge must be nonzero (units of e)")
        return self

    @classmethod
    def _build(cls, method, species, field, value, mass0, charge) -> ReferenceParticle:
        try:
            m, q = _species_constants(species, mass0, charge)
            fields = _derive(m, q, field, value, label=f"value ({field})")
        except ValueError as e:
            raise ValueError(f"ReferenceParticle.{method}: {e}") from None
        return cls(species=species, **fields)

    @classmethod
    def from_kinetic_energy(cls, species: str, value: float, *, mass0=None, charge=None):
        """Reference particle with kinetic energy ``value`` [eV].

        Args:
            species: species name (see the class docstring).
            value: kinetic energy [eV], positive.
            mass0: rest energy [eV]; overrides the species table (needed for ions).
            charge: charge [e], signed; overrides the species table (needed for ions).
        """
        return cls._build("from_kinetic_energy", species, "kin_energy0", value, mass0, charge)

    @classmethod
    def from_energy(cls, species: str, value: float, *, mass0=None, charge=None):
        """Reference particle with total energy ``value`` [eV] (above the rest mass)."""
        return cls._build("from_energy", species, "energy0", value, mass0, charge)

    @classmethod
    def from_p0c(cls, species: str, value: float, *, mass0=None, charge=None):
        """Reference particle with momentum times c ``value`` [eV]."""
        return cls._build("from_p0c", species, "p0c", value, mass0, charge)

    @classmethod
    def from_gamma(cls, species: str, value: float, *, mass0=None, charge=None):
        """Reference particle with relativistic gamma ``value`` (> 1)."""
        return cls._build("from_gamma", species, "gamma0", value, mass0, charge)

    @classmethod
    def from_brho(cls, species: str, value: float, *, mass0=None, charge=None):
        """Reference particle with magnetic rigidity ``value`` [T m]."""
        return cls._build("from_brho", species, "brho", value, mass0, charge)

    def reference(self) -> Reference:
        """The plain-float constants the maps need (``jacc.physics.base.Reference``)."""
        return Reference(self.beta0, self.gamma0, self.p0c, self.mass0, self.charge)


# ----------------------------------------------------------------------------------------
# Coordinate converters. Each takes one 6-vector or an (n, 6) array (the columns are read
# with [..., i]); numpy in gives numpy out, JAX in gives JAX out (jittable, differentiable).
# `ref` is anything with a `beta0` attribute (ReferenceParticle or Reference).
# ----------------------------------------------------------------------------------------


def _xp(x):
    return jnp if isinstance(x, jax.Array) else np


def delta_from_pt(pt, beta0: float):
    """Relative momentum deviation ``delta = (p - p0)/p0`` from ``pt = dE/(p0 c)``.

    Uses ``delta = sqrt(1 + 2 pt/beta0 + pt^2) - 1`` written without cancellation, so small
    deviations keep full relative precision.
    """
    xp = _xp(pt)
    a = 2.0 * pt / beta0 + pt * pt
    return a / (xp.sqrt(1.0 + a) + 1.0)


def pt_from_delta(delta, beta0: float):
    """``pt = dE/(p0 c)`` from ``delta = (p - p0)/p0`` (inverse of :func:`delta_from_pt`)."""
    xp = _xp(delta)
    b = 2.0 * delta + delta * delta  # = 2 pt/beta0 + pt^2
    return b / (xp.sqrt(1.0 / beta0**2 + b) + 1.0 / beta0)


def madx_to_xsuite(coords, ref):
    """MAD-X ``(x, px, y, py, t, pt)`` to Xsuite ``(x, px, y, py, zeta, delta)``."""
    xp = _xp(coords)
    c = coords
    b0 = ref.beta0
    return xp.stack([c[..., 0], c[..., 1], c[..., 2], c[..., 3],
                     b0 * c[..., 4], delta_from_pt(c[..., 5], b0)], axis=-1)


def xsuite_to_madx(coords, ref):
    """Xsuite ``(x, px, y, py, zeta, delta)`` to MAD-X ``(x, px, y, py, t, pt)``."""
    xp = _xp(coords)
    c = coords
    b0 = ref.beta0
    return xp.stack([c[..., 0], c[..., 1], c[..., 2], c[..., 3],
                     c[..., 4] / b0, pt_from_delta(c[..., 5], b0)], axis=-1)


def xsuite_particles_kwargs(coords, ref) -> dict:
    """Keyword arguments for ``xt.Particles(**kw)`` holding MAD-X ``coords`` (n, 6).

    Gives ``mass0`` [eV], ``q0`` [e], ``p0c`` [eV] and the columns ``x, px, y, py, zeta,
    delta`` as numpy arrays.
    """
    xs = np.atleast_2d(np.asarray(madx_to_xsuite(np.asarray(coords, dtype=float), ref)))
    names = ("x", "px", "y", "py", "zeta", "delta")
    return {"mass0": ref.mass0, "q0": ref.charge, "p0c": ref.p0c,
            **{n: xs[:, i].copy() for i, n in enumerate(names)}}


def madx_to_impactx(coords):
    """MAD-X ``(x, px, y, py, t, pt)`` to ImpactX's ``(x, px, y, py, t, pt)``.

    ImpactX's ``t = +c dt`` [m] and ``pt = -dE/(p0 c)`` are MAD-X's with the sign flipped; the
    transverse coordinates (normalised by p0 in both codes) are unchanged.
    """
    xp = _xp(coords)
    sign = xp.asarray([1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
    return coords * sign


def impactx_to_madx(coords):
    """ImpactX ``(x, px, y, py, t, pt)`` to MAD-X ``(x, px, y, py, t, pt)`` (its own inverse)."""
    return madx_to_impactx(coords)


def impactx_particles_kwargs(coords, ref, weights=None) -> dict:
    """Arguments for ImpactX's ``ParticleContainer.add_n_particles(**kw)`` from MAD-X ``coords``.

    Gives numpy columns ``x, y, t, px, py, pt`` (ImpactX signs), ``qm`` = charge / mass0
    [1/eV] and ``w`` (macroparticle weights: real particles per macroparticle, default 1).
    The ImpactX reference particle is set separately, e.g.
    ``ref_ix.set_charge_qe(ref.charge).set_mass_MeV(ref.mass0 * 1e-6)
    .set_kin_energy_MeV(ref.kin_energy0 * 1e-6)``.
    """
    ix = np.atleast_2d(madx_to_impactx(np.asarray(coords, dtype=float)))
    w = np.ones(ix.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    return {"x": ix[:, 0].copy(), "y": ix[:, 2].copy(), "t": ix[:, 4].copy(),
            "px": ix[:, 1].copy(), "py": ix[:, 3].copy(), "pt": ix[:, 5].copy(),
            "qm": ref.charge / ref.mass0, "w": w}


def _beamphysics():
    """The openPMD-beamphysics package (module ``beamphysics``, formerly ``pmd_beamphysics``)."""
    try:
        import beamphysics  # openpmd-beamphysics >= 0.16
    except ImportError:
        try:
            import pmd_beamphysics as beamphysics  # older releases
        except ImportError as e:
            raise ImportError(
                "openPMD conversion needs openpmd-beamphysics (pip install 'jacc[io]')"
            ) from e
    import importlib

    importlib.import_module(beamphysics.__name__ + ".species")
    return beamphysics


def to_particle_group(phase_space, *, s: float = 0.0, t_ref: float = 0.0):
    """An openPMD-beamphysics ``ParticleGroup`` from a :class:`jacc.containers.PhaseSpace`.

    Args:
        phase_space: particles in MAD-X coordinates with their reference particle.
        s: longitudinal position of the particles, written as ``z`` [m] for all of them.
        t_ref: arrival time of the reference particle [s]; particle times are
            ``t_ref - t / c`` (MAD-X ``t = -c dt``).

    Momenta are exchanged exactly (``p = p0 (1 + delta)``); the group derives energies from its
    own species mass table (CODATA 2022), so a reference built with another mass (e.g. MAD-X's
    CODATA 2018) gives energies that differ by that mass difference. Weights become
    macro-charges ``weight * |charge| * e`` [C]; ``status`` is 1 for alive particles, else 0.
    """
    bp = _beamphysics()
    ref = phase_space.ref
    known = bp.species.MASS_OF
    if ref.species not in known:
        raise ValueError(
            f"to_particle_group: openPMD-beamphysics knows species {sorted(known)}, "
            f"not {ref.species!r}"
        )
    c = np.atleast_2d(np.asarray(phase_space.coords, dtype=float))
    n = c.shape[0]
    delta = delta_from_pt(c[:, 5], ref.beta0)
    p = ref.p0c * (1.0 + delta)
    px, py = c[:, 1] * ref.p0c, c[:, 3] * ref.p0c
    # Canonical px, py equal kinetic momenta where the vector potential vanishes (drift space).
    pz = np.sqrt((p - px) * (p + px) - py * py)
    data = {
        "x": c[:, 0].copy(), "px": px, "y": c[:, 2].copy(), "py": py,
        "z": np.full(n, float(s)), "pz": pz,
        "t": t_ref - c[:, 4] / C_LIGHT,
        "status": np.where(np.asarray(phase_space.alive), 1, 0),
        "weight": np.asarray(phase_space.weights, dtype=float) * abs(ref.charge) * E_CHARGE,
        "species": ref.species,
    }
    return bp.ParticleGroup(data=data)


def from_particle_group(pg, ref: ReferenceParticle, *, t_ref: float = 0.0):
    """A :class:`jacc.containers.PhaseSpace` in MAD-X coordinates from a ``ParticleGroup``.

    Args:
        pg: openPMD-beamphysics ``ParticleGroup`` with every particle at the same ``z`` (s-based
            data; use ``pg.drift_to_z()`` first for time-based data).
        ref: reference particle the coordinates are relative to; its species must be the group's.
        t_ref: arrival time of the reference particle [s].

    Weights are macro-charges [C] divided by ``|charge| e``; alive means ``status == 1``.
    """
    from jacc.containers import PhaseSpace

    if pg.species != ref.species:
        raise ValueError(
            f"from_particle_group: group species {pg.species!r} differs from the reference "
            f"particle's {ref.species!r}"
        )
    z = np.asarray(pg.z, dtype=float)
    if z.size and np.ptp(z) > 0.0:
        raise ValueError(
            "from_particle_group: particles are not at one z (time-based data); "
            "call pg.drift_to_z() first"
        )
    px, py, pz = (np.asarray(pg[k], dtype=float) for k in ("px", "py", "pz"))
    p = np.sqrt(px * px + py * py + pz * pz)
    delta = (p - ref.p0c) / ref.p0c
    coords = np.stack(
        [np.asarray(pg.x, dtype=float), px / ref.p0c, np.asarray(pg.y, dtype=float), py / ref.p0c,
         -C_LIGHT * (np.asarray(pg.t, dtype=float) - t_ref), pt_from_delta(delta, ref.beta0)],
        axis=-1,
    )
    weights = np.asarray(pg.weight, dtype=float) / (abs(ref.charge) * E_CHARGE)
    alive = np.asarray(pg.status) == 1
    return PhaseSpace.from_array(coords, ref, weights=weights, alive=alive)
