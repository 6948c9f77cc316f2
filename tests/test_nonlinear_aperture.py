"""Dynamic aperture: the polar scan and its container; against xtrack on the FODO ring."""

import numpy as np
import pytest

import jacc
from jacc.nonlinear import DynamicAperture, dynamic_aperture, polar_grid

# the FODO ring's sextupoles (k2f = 0.3, k2d = -0.5 /m^3) scaled up so that the DA (about 3 cm)
# stays far below xtrack's global 1 m limit, which JACC applies only at the end of the run
SEXTUPOLE_SCALE = 20.0
RADII = np.linspace(2e-3, 60e-3, 20)  # one grid step: 3.05 mm
ANGLES = np.linspace(0.1, np.pi / 2 - 0.1, 5)


def test_steps_and_aperture():
    """The DA of a ray ends before its first lost radius, even if larger radii survive."""
    survived = np.array([[[True, True, False, True], [True, True, True, True], [False, True, True, True]]])
    da = DynamicAperture(np.array([1.0, 2.0, 3.0, 4.0]), np.zeros(3), np.zeros(1), survived, 10)
    assert da.steps.tolist() == [[1, 3, -1]]
    assert da.aperture.tolist() == [[2.0, 4.0, 0.0]]
    g = polar_grid([1.0, 2.0], [0.0, np.pi / 2], pt=1e-3)
    assert np.allclose(g[:, [0, 2, 5]], [[1, 0, 1e-3], [2, 0, 1e-3], [0, 1, 1e-3], [0, 2, 1e-3]], atol=1e-15)


def test_dynamic_aperture_small_ring():
    """A thin sextupole in a small ring: small amplitudes survive, large ones are lost; plot()."""
    import matplotlib

    matplotlib.use("Agg")
    from jacc.lattice.elements import Drift, Multipole, Quadrupole

    qf, qd = Quadrupole(name="qf", l=0.2, k1=1.2), Quadrupole(name="qd", l=0.2, k1=-1.1)
    d, sx = Drift(name="d", l=1.0), Multipole(name="sx", knl=[0.0, 0.0, 40.0])
    lat = jacc.Lattice.from_elements([qf, d, qd, d] * 3 + [qf, d, sx, qd, d], name="sxring")
    rp = jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    da = dynamic_aperture(lat, rp, [1e-4, 1e-3, 0.02, 0.1], [0.3, 1.2], 64, deltas=(0.0, 1e-3), progress=False)
    assert da.survived.shape == (2, 2, 4)
    assert da.survived[:, :, 0].all() and not da.survived[:, :, -1].any()
    da.plot()


@pytest.fixture(scope="module")
def fodo_both():
    import sys

    xt = pytest.importorskip("xtrack")
    pytest.importorskip("cpymad")
    sys.path.insert(0, str(jacc.lattices.data_path("fodo40.madx").parents[3] / "benchmarks"))
    from common import load_madx, xtrack_line

    lat, rp, madx, seq = load_madx(jacc.lattices.data_path("fodo40.madx"))
    line = xtrack_line(madx, seq, rp)
    for knob, k2 in (("k2f", 0.3), ("k2d", -0.5)):
        lat.set_knob(knob, k2 * SEXTUPOLE_SCALE)
        line.vars[knob] = k2 * SEXTUPOLE_SCALE
    line.build_tracker()
    return lat, rp, line, xt


def xtrack_steps(line, xt, rp, n_turns, delta):
    x0 = polar_grid(RADII, ANGLES)
    p = xt.Particles(mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c, x=x0[:, 0], y=x0[:, 2],
                     delta=np.full(len(x0), delta))
    line.track(p, num_turns=n_turns)
    p.sort(interleave_lost_particles=True)
    lost = ~(p.state > 0).reshape(ANGLES.size, RADII.size)
    return np.where(lost.any(-1), lost.argmax(-1), RADII.size) - 1


@pytest.mark.slow
def test_dynamic_aperture_against_xtrack(fodo_both):
    """Same polar grid (20 radii x 5 angles), 300 turns, on and off momentum: every ray's DA
    within one grid step of xtrack's (default models on both sides)."""
    lat, rp, line, xt = fodo_both
    deltas = (0.0, 5e-3)
    da = dynamic_aperture(lat, rp, RADII, ANGLES, 300, deltas=deltas, progress=False)
    for k, delta in enumerate(deltas):
        ref = xtrack_steps(line, xt, rp, 300, delta)
        assert 3 <= ref.min() and ref.max() < RADII.size - 1  # the boundary is inside the grid
        assert np.max(np.abs(da.steps[k] - ref)) <= 1, (delta, da.steps[k], ref)
