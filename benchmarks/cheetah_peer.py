"""Cheetah as a peer in the benchmarks: a JACC lattice expressed as a ``cheetah.Segment``.

Only what Cheetah can express is converted (drifts, quadrupoles, sector bends, sextupoles,
correctors at zero kick, markers, monitors, RF cavities at zero voltage); anything else raises
`NotImplementedError`, and the benchmark reports Cheetah as not applicable.
"""

from __future__ import annotations

import numpy as np


def to_cheetah(lat, rp):
    import cheetah
    import torch

    t = lambda v: torch.tensor(float(v), dtype=torch.float64)
    out = []
    for p in lat.elements:
        e = p.element
        kind, name = e.element_name, f"e{p.index}"
        if kind in ("Drift",) or (kind == "Monitor" and e.l > 0):
            out.append(cheetah.Drift(length=t(e.l), name=name, dtype=torch.float64))
        elif kind == "Quadrupole" and e.k1s == 0 and e.tilt == 0:
            out.append(cheetah.Quadrupole(length=t(e.l), k1=t(e.k1), name=name, dtype=torch.float64))
        elif kind == "SBend" and e.k2 == 0:
            out.append(cheetah.Dipole(length=t(e.l), angle=t(e.angle), k1=t(e.k1), dipole_e1=t(e.e1),
                                      dipole_e2=t(e.e2), gap=t(e.gap), fringe_integral=t(e.fint),
                                      fringe_integral_exit=t(e.fintx), name=name, dtype=torch.float64))
        elif kind == "Sextupole" and e.k2s == 0:
            out.append(cheetah.Sextupole(length=t(e.l), k2=t(e.k2), name=name, dtype=torch.float64))
        elif kind in ("Marker", "Monitor"):
            out.append(cheetah.Marker(name=name))
        elif kind in ("HKicker", "VKicker", "HVCorrector") and e.xangle == 0 and e.yangle == 0:
            out.append(cheetah.Drift(length=t(e.l), name=name, dtype=torch.float64)
                       if e.l > 0 else cheetah.Marker(name=name))
        elif kind == "RFCavity" and e.voltage == 0:
            out.append(cheetah.Drift(length=t(e.l), name=name, dtype=torch.float64))
        else:
            raise NotImplementedError(f"Cheetah peer: no conversion for {kind} '{e.name}'")
    return cheetah.Segment(elements=out)


def cheetah_runner(lat, rp, x, n_turns):
    """``run() -> (n, 6)`` tracking ``x`` (MAD-X coordinates) with Cheetah's default models."""
    import cheetah
    import torch

    torch.set_num_threads(1)
    seg = to_cheetah(lat, rp)
    n = x.shape[0]
    parts = torch.ones((n, 7), dtype=torch.float64)
    # Cheetah uses (x, px, y, py, tau, p) with p = dE/(p0 c): transverse and pt as MAD-X.
    parts[:, :6] = torch.as_tensor(x)
    species = cheetah.Species("electron" if rp.species == "electron" else "proton")
    beam = cheetah.ParticleBeam(parts, energy=torch.tensor(rp.energy0, dtype=torch.float64),
                                species=species, dtype=torch.float64)

    def run():
        b = beam
        for _ in range(n_turns):
            b = seg.track(b)
        return b.particles[:, :6].detach().numpy()

    return run
