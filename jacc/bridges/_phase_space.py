"""Phase space across code boundaries: `jacc.PhaseSpace` to and from Xsuite, ImpactX and openPMD.

Every converter goes through the coordinate converters of `jacc.particles` (where the
conventions are stated), so that a particle means the same in every code:

- Xsuite: ``xt.Particles`` with ``zeta = beta0 t`` and ``delta(pt)``, ``weight`` = the
  macroparticle weight, ``state`` 1 (alive) or 0 (lost); read back in ``particle_id`` order.
- ImpactX: a particle container (``sim.beam``) with ``t``, ``pt`` sign-flipped,
  ``weighting`` = the weight; ImpactX holds no lost particles, so only alive ones are
  written; read back in the order ImpactX numbered them (the order they were added).
- openPMD-beamphysics: `to_particle_group` / `from_particle_group` (`jacc.particles`).

The reference particle of an ``xt.Particles`` or an ImpactX container is rebuilt from its
mass, charge and momentum (species named when the mass is a known one) unless given.
"""

from __future__ import annotations

import numpy as np

from jacc.containers import PhaseSpace
from jacc.particles import (SPECIES, ReferenceParticle, from_particle_group, impactx_particles_kwargs,
                            impactx_to_madx, to_particle_group, xsuite_particles_kwargs, xsuite_to_madx)

__all__ = ["from_impactx_particles", "from_particle_group", "from_xsuite_particles",
           "to_impactx_particles", "to_particle_group", "to_xsuite_particles"]

# A mass within this of a species' is that species (MAD-X's CODATA 2018 proton differs
# from CODATA 2022 by 1.4e-9 relative and is still a proton).
_SPECIES_RTOL = 1e-8


def _species(mass0: float, charge: float) -> str:
    for name, (m, q) in SPECIES.items():
        if q == charge and abs(mass0 - m) <= _SPECIES_RTOL * m:
            return name
    return "ion"


def _check_phase_space(who: str, ps) -> None:
    if not isinstance(ps, PhaseSpace):
        raise TypeError(f"{who}: expected a jacc.PhaseSpace, got {type(ps).__name__}")


def to_xsuite_particles(ps: PhaseSpace):
    """An ``xt.Particles`` holding ``ps``: its reference particle as ``mass0``, ``q0``,
    ``p0c``, its coordinates as ``(x, px, y, py, zeta, delta)``, ``weight`` and ``state``
    (1 alive, 0 lost). ``particle_id`` is each particle's index in ``ps`` (xtrack keeps lost
    particles at the end of its arrays)."""
    import xtrack as xt

    _check_phase_space("to_xsuite_particles", ps)
    kw = xsuite_particles_kwargs(np.asarray(ps.coords, dtype=float), ps.ref)
    return xt.Particles(**kw, weight=np.asarray(ps.weights, dtype=float),
                        state=np.where(np.asarray(ps.alive), 1, 0).astype(np.int64))


def _xsuite_reference(parts) -> ReferenceParticle:
    p0c, mass0, q0 = (np.asarray(getattr(parts, k), dtype=float) for k in ("p0c", "mass0", "q0"))
    if p0c.size and np.ptp(p0c) > 0.0:
        raise ValueError("from_xsuite_particles: the particles have different p0c; pass ref=")
    m, q = float(np.ravel(mass0)[0]), float(np.ravel(q0)[0])
    return ReferenceParticle.from_p0c(_species(m, q), float(p0c.ravel()[0]), mass0=m, charge=q)


def from_xsuite_particles(parts, ref: ReferenceParticle | None = None) -> PhaseSpace:
    """A `jacc.PhaseSpace` from an ``xt.Particles``, in ``particle_id`` order (lost
    particles included, ``alive = state > 0``).

    Args:
        parts: the particles (not modified; a sorted copy is read).
        ref: the reference particle; default: built from the particles' ``mass0``, ``q0``
            and ``p0c``. Its momentum must be the particles' (1e-12 relative).
    """
    ref = _xsuite_reference(parts) if ref is None else ref
    p0c = float(np.ravel(parts.p0c)[0]) if len(parts.x) else ref.p0c
    if abs(p0c - ref.p0c) > 1e-12 * ref.p0c:
        raise ValueError(f"from_xsuite_particles: particles have p0c = {p0c!r} eV, the reference "
                         f"particle {ref.p0c!r} eV")
    coords, alive, weights = xsuite_arrays(parts, ref)
    return PhaseSpace.from_array(coords, ref, weights=weights, alive=alive)


def xsuite_arrays(parts, ref) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(coords (n, 6), alive (n,), weights (n,))`` of an ``xt.Particles`` in MAD-X
    coordinates and ``particle_id`` order, as NumPy arrays (lost particles included)."""
    p = parts.copy()
    p.sort(interleave_lost_particles=True)
    xs = np.stack([np.asarray(getattr(p, k), dtype=float)
                   for k in ("x", "px", "y", "py", "zeta", "delta")], axis=1)
    return (np.asarray(xsuite_to_madx(xs, ref)), np.asarray(p.state) > 0,
            np.asarray(p.weight, dtype=float).copy())


def set_impactx_reference(pc, ref: ReferenceParticle) -> None:
    """Set the reference particle of ImpactX container ``pc`` from ``ref`` (charge, mass,
    kinetic energy)."""
    pc.ref.set_charge_qe(ref.charge).set_mass_MeV(ref.mass0 * 1e-6).set_kin_energy_MeV(
        ref.kin_energy0 * 1e-6)


def to_impactx_particles(ps: PhaseSpace, pc, *, set_reference: bool = True) -> int:
    """Add the alive particles of ``ps`` to ImpactX container ``pc`` (e.g. ``sim.beam`` of an
    initialised ``impactx.ImpactX``); returns how many were added.

    Args:
        ps: the phase space (lost particles are left out: ImpactX holds none).
        pc: the ImpactX particle container.
        set_reference: also set ``pc``'s reference particle from ``ps.ref``.
    """
    _check_phase_space("to_impactx_particles", ps)
    if set_reference:
        set_impactx_reference(pc, ps.ref)
    alive = np.asarray(ps.alive)
    kw = impactx_particles_kwargs(np.asarray(ps.coords, dtype=float)[alive], ps.ref,
                                  weights=np.asarray(ps.weights, dtype=float)[alive])
    if kw["x"].size:
        pc.add_n_particles(kw["x"], kw["y"], kw["t"], kw["px"], kw["py"], kw["pt"], kw["qm"], w=kw["w"])
    return int(kw["x"].size)


def _impactx_reference(pc) -> ReferenceParticle:
    r = pc.ref
    m, q = float(r.mass_MeV) * 1e6, float(r.charge_qe)
    return ReferenceParticle.from_kinetic_energy(_species(m, q), float(r.kin_energy_MeV) * 1e6,
                                                 mass0=m, charge=q)


def from_impactx_particles(pc, ref: ReferenceParticle | None = None) -> PhaseSpace:
    """A `jacc.PhaseSpace` (all alive) from ImpactX container ``pc``, in the order the
    particles were added.

    Args:
        pc: the ImpactX particle container (``sim.beam``).
        ref: the reference particle; default: built from ``pc.ref`` (charge, mass, kinetic
            energy; ImpactX keeps its energy to ~1e-14 relative).
    """
    import impactx

    ref = _impactx_reference(pc) if ref is None else ref
    ids, cols, w = [], [], []
    names = ("position_x", "momentum_x", "position_y", "momentum_y", "position_t", "momentum_t")
    for pti in impactx.ImpactXParIter(pc, level=0):
        soa = pti.soa().to_numpy()
        ids.append(np.array(soa.idcpu, copy=True))
        cols.append(np.stack([np.array(soa.real[n], copy=True) for n in names], axis=1))
        w.append(np.array(soa.real["weighting"], copy=True))
    if not ids:
        return PhaseSpace.from_array(np.zeros((0, 6)), ref)
    order = np.argsort(np.concatenate(ids), kind="stable")
    coords = impactx_to_madx(np.concatenate(cols)[order])
    return PhaseSpace.from_array(coords, ref, weights=np.concatenate(w)[order])
