"""Nonlinear dynamics: IOTA's Danilov-Nagaitsev invariants, frequency maps, dynamic aperture
and detuning with amplitude.

    from jacc.lattices import NonlinearInsert
    lat, rp = jacc.lattices.iota(nonlinear_insert=NonlinearInsert(t=0.4, c=0.01, n_slices=18))
    inv = jacc.nonlinear.invariants(lat, rp, x0, 1000, insert)       # .H, .I, .spread(), .plot()
    fm = jacc.nonlinear.frequency_map(lat, rp, grid, 1024)           # .qx, .qy, .diffusion, .plot()
    da = jacc.nonlinear.dynamic_aperture(lat, rp, radii, angles, 1000, deltas=(0, 1e-3))
    dt = jacc.nonlinear.detuning(lat, rp, jacc.twiss(lat, rp), actions)
"""

from .aperture import DynamicAperture, dynamic_aperture, polar_grid, survival
from .detuning import Detuning, detuning, octupole_detuning
from .dn import dn_elliptic, dn_hamiltonian, dn_second_invariant
from .fma import FrequencyMap, frequency_map, tunes_from_tbt
from .invariants import Invariants, invariants, normalise
from .naff import naff_tune, naff_tunes
from .thick import thick_insert_pass

__all__ = ["Detuning", "DynamicAperture", "FrequencyMap", "Invariants", "detuning", "dn_elliptic",
           "dn_hamiltonian", "dn_second_invariant", "dynamic_aperture", "frequency_map", "invariants",
           "naff_tune", "naff_tunes", "normalise", "octupole_detuning", "polar_grid", "survival",
           "thick_insert_pass", "tunes_from_tbt"]
