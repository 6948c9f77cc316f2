"""Tracking a phase space through exported ImpactX elements, in this process, without files."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jacc.particles import ReferenceParticle, impactx_particles_kwargs, impactx_to_madx

from ._watchpoint import particle_arrays

__all__ = ["ImpactXTrackResult", "track_impactx"]


class ImpactXTrackResult(NamedTuple):
    """Coordinates after tracking with ImpactX, in the order of the input particles.

    Attributes:
        x: (n, 6) MAD-X coordinates; NaN for particles ImpactX lost (at an aperture).
        alive: (n,) True for the particles that came through.
    """

    x: np.ndarray
    alive: np.ndarray


def track_impactx(elements, rp: ReferenceParticle, x0, *, periods: int = 1) -> ImpactXTrackResult:
    """Track MAD-X coordinates ``x0`` (n, 6) through ImpactX ``elements`` (no space charge).

    Runs a fresh ``impactx.ImpactX`` simulation with diagnostics, profiler output and
    files switched off: the reference particle from ``rp`` (charge, mass and kinetic energy
    as given, so that ImpactX's momenta equal JACC's), the particles with unit weights,
    the lattice repeated ``periods`` times. Watchpoints in ``elements`` record as it runs.

    Args:
        elements: ImpactX element objects (e.g. `ImpactXExporter.write_lattice`'s result).
        rp: the reference particle.
        x0: (n, 6) coordinates in MAD-X's convention (converted to ImpactX's here).
        periods: how many times the lattice is passed (ImpactX ``periods``).
    """
    from impactx import ImpactX

    x0 = np.atleast_2d(np.asarray(x0, dtype=float))
    sim = ImpactX()
    try:
        sim.verbose = 0
        sim.tiny_profiler = False
        sim.space_charge = False
        sim.diagnostics = False
        sim.slice_step_diagnostics = False
        sim.init_grids()
        sim.beam.ref.set_charge_qe(rp.charge).set_mass_MeV(rp.mass0 * 1e-6).set_kin_energy_MeV(
            rp.kin_energy0 * 1e-6)
        kw = impactx_particles_kwargs(x0, rp)
        sim.beam.add_n_particles(kw["x"], kw["y"], kw["t"], kw["px"], kw["py"], kw["pt"],
                                 kw["qm"], w=kw["w"])
        # ImpactX numbers particles globally across simulations: remember this run's ids
        ids0, _ = particle_arrays(sim.beam)
        sim.lattice.extend(list(elements))
        sim.periods = int(periods)
        sim.track_particles()
        ids, coords = particle_arrays(sim.beam)
    finally:
        sim.finalize()
    return _in_input_order(ids0, ids, coords, x0.shape[0])


def _in_input_order(ids0, ids, coords, n) -> ImpactXTrackResult:
    # particles are added in the order given and numbered in that order
    order0 = np.sort(ids0)
    if order0.shape[0] != n:
        raise RuntimeError(f"track_impactx: ImpactX holds {order0.shape[0]} particles, {n} were added")
    where = np.searchsorted(order0, ids)
    x = np.full((n, 6), np.nan)
    x[where] = np.asarray(impactx_to_madx(coords))
    alive = np.zeros(n, bool)
    alive[where] = True
    return ImpactXTrackResult(x, alive)
