"""Reference tracking with xtrack, in MAD-X canonical coordinates.

MAD-X ``t`` is xtrack's ``tau = zeta / beta0`` and MAD-X ``pt`` is xtrack's ``ptau``;
transverse coordinates are the same in both codes.
"""

from __future__ import annotations

import numpy as np

from jacc.physics.base import Reference


def xsuite_reference(species: str) -> Reference:
    """150 MeV electrons or 2.5 MeV protons (kinetic), with xtrack's masses."""
    import xtrack as xt

    if species == "proton":
        mass, charge, ekin = xt.PROTON_MASS_EV, 1.0, 2.5e6
    else:
        mass, charge, ekin = xt.ELECTRON_MASS_EV, -1.0, 150e6
    p0c = float(np.sqrt((mass + ekin) ** 2 - mass**2))
    ref = xt.Particles(mass0=mass, q0=charge, p0c=p0c)
    return Reference(float(ref.beta0[0]), float(ref.gamma0[0]), p0c, mass, charge)


def xsuite_particles(x_madx, *, mass0, q0, p0c):
    """Build ``xt.Particles`` from an ``(n, 6)`` array of MAD-X coordinates."""
    import xtrack as xt

    x = np.atleast_2d(np.asarray(x_madx, dtype=float))
    ref = xt.Particles(mass0=mass0, q0=q0, p0c=p0c)
    beta0 = float(ref.beta0[0])
    return xt.Particles(
        mass0=mass0, q0=q0, p0c=p0c,
        x=x[:, 0], px=x[:, 1], y=x[:, 2], py=x[:, 3],
        zeta=x[:, 4] * beta0, ptau=x[:, 5],
    )


def xsuite_to_madx(particles):
    """Return the ``(n, 6)`` MAD-X coordinates of ``xt.Particles``, sorted by particle id."""
    p = particles.copy()
    p.sort(interleave_lost_particles=True)
    beta0 = float(p.beta0[0])
    return np.stack([p.x, p.px, p.y, p.py, p.zeta / beta0, p.ptau], axis=1)


def xsuite_track(line, x_madx, *, mass0, q0, p0c, num_turns=1):
    """Track MAD-X coordinates through an ``xt.Line`` (built here if needed).

    Returns ``(coordinates (n, 6), state (n,))`` in the order of ``x_madx`` (state > 0: alive).
    """
    if line.tracker is None:
        line.build_tracker()
    parts = xsuite_particles(x_madx, mass0=mass0, q0=q0, p0c=p0c)
    line.track(parts, num_turns=num_turns)
    # xtrack moves lost particles to the end: sort by particle id before reading the state
    parts.sort(interleave_lost_particles=True)
    return xsuite_to_madx(parts), np.asarray(parts.state.copy())
