"""Thin lens slices against the thick insert integrated with diffrax, on a single pass."""

import numpy as np
import pytest

import jacc
from jacc.lattice.elements import Drift, Marker
from jacc.lattices import NonlinearInsert, with_nonlinear_insert
from jacc.nonlinear.thick import thick_insert_pass

L = 1.8


@pytest.mark.slow
def test_thin_slices_converge_to_thick_insert():
    """Kicks of 4, 8, 16, 32 slices against the leapfrog-integrated insert (1000 steps: its
    own error is below 1e-7 of the kick): relative differences 7.4e-3, 1.6e-3, 3.9e-4, 9.7e-5,
    bounded here by 1e-2 / (n / 4)^2 * 1.2 and shrinking about 4x per doubling."""
    rp = jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    bare = jacc.Lattice.from_elements([Marker(name="nlr1"), Drift(name="dnl", l=L), Marker(name="nlr2")], name="ins")
    ins = NonlinearInsert(t=0.4, c=0.01, n_slices=4)
    bc = ins.beta_centre(L)
    beta_in, alfa_in = bc + (L / 2) ** 2 / bc, L / 2 / bc
    x0 = np.zeros((3, 6))
    x0[:, 0], x0[:, 2] = [3e-3, 5e-3, 1e-3], [2e-3, 1e-3, 6e-3]
    x0[:, 1], x0[:, 3] = -alfa_in * x0[:, 0] / beta_in, -alfa_in * x0[:, 2] / beta_in
    ref = np.asarray(thick_insert_pass(x0, ins, L, 1000))
    drift = x0.copy()
    drift[:, 0] += L * x0[:, 1]
    drift[:, 2] += L * x0[:, 3]
    kick = np.abs(ref - drift)[:, [1, 3]].max()
    errs = []
    for n in (4, 8, 16, 32):
        lat = with_nonlinear_insert(bare, NonlinearInsert(t=0.4, c=0.01, n_slices=n))
        thin = np.asarray(jacc.track(lat, rp, x0, 1, record=None).x)
        errs.append(np.abs(thin - ref)[:, [1, 3]].max() / kick)
    errs = np.array(errs)
    assert np.all(errs < 1.2e-2 / (np.array([4, 8, 16, 32]) / 4) ** 2)
    assert np.all(errs[:-1] / errs[1:] > 3.5)
