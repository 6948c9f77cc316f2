"""NAFF tunes (against nafflib and jacc.twiss), frequency maps and detuning with amplitude."""

import numpy as np
import pytest

import jacc
from jacc.lattice.elements import Drift, Marker, Multipole, Quadrupole
from jacc.nonlinear import frequency_map, naff_tunes, octupole_detuning


def octupole_ring(k3l: float) -> jacc.Lattice:
    """Four FODO cells (tunes 0.217, 0.089) with one thin octupole ``knl[3] = k3l`` [1/m^3]."""
    qf, qd = Quadrupole(name="qf", l=0.2, k1=1.2), Quadrupole(name="qd", l=0.2, k1=-1.1)
    d, oc = Drift(name="d", l=1.0), Multipole(name="oct", knl=[0.0, 0.0, 0.0, k3l])
    return jacc.Lattice.from_elements([Marker(name="start")] + [qf, d, qd, d] * 3 + [qf, d, oc, qd, d],
                                      name="octring")


@pytest.fixture(scope="module")
def ring():
    lat = octupole_ring(50.0)
    rp = jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    return lat, rp, jacc.twiss(lat, rp)


def test_naff_against_nafflib():
    """A line plus weaker harmonics, 1024 turns: the JAX NAFF and nafflib agree to 1e-9 and
    find the line to 1e-9 (Hann window: error ~ N^-4 for an isolated line)."""
    nafflib = pytest.importorskip("nafflib")
    k = np.arange(1024)
    qs = np.array([0.1234567, 0.31, 0.4471])
    x = np.stack([np.cos(2 * np.pi * q * k + 0.3) + 0.05 * np.cos(2 * np.pi * 0.07 * k) for q in qs])
    ours = np.asarray(naff_tunes(x))
    theirs = np.array([abs(nafflib.tune(s)) for s in x])
    assert np.max(np.abs(ours - qs)) < 1e-9
    assert np.max(np.abs(ours - theirs)) < 1e-9
    z = np.exp(2j * np.pi * 0.8 * k)  # complex signal: the rotation's sign is kept
    assert float(naff_tunes(z[None])[0]) == pytest.approx(0.8, abs=1e-10)


def test_naff_tunes_agree_with_twiss(ring):
    """Small amplitude (octupole off, 1024 turns): NAFF tunes equal jacc.twiss's within 1e-6."""
    lat, rp, _ = ring
    lat0 = octupole_ring(0.0)
    tw0 = jacc.twiss(lat0, rp)
    grid = np.zeros((2, 6))
    grid[:, 0], grid[:, 2] = [1e-6, 2e-6], [1e-6, 1e-6]
    at = tuple(float(np.asarray(v)[1]) for v in (tw0.betx, tw0.alfx, tw0.bety, tw0.alfy))
    fm = frequency_map(lat0, rp, grid, 1024, twiss_at=at, progress=False)
    assert np.max(np.abs(fm.qx - tw0.qx % 1)) < 1e-6
    assert np.max(np.abs(fm.qy - tw0.qy % 1)) < 1e-6
    assert np.all(fm.diffusion < -8)


def test_frequency_map_container(ring):
    """Tunes move with amplitude under the octupole; lost particles are flagged; plot() works."""
    import matplotlib

    matplotlib.use("Agg")
    lat, rp, _ = ring
    grid = np.zeros((6, 6))
    grid[:, 0] = [1e-4, 5e-4, 1e-3, 2e-3, 3e-3, 0.5]
    grid[:, 2] = 1e-4
    fm = frequency_map(lat, rp, grid, 256, chunk=4, progress=False)
    assert fm.alive[:5].all() and not fm.alive[5]
    assert np.isnan(fm.diffusion[5])
    assert abs(fm.qx[3] - fm.qx[0]) > 1e-5
    fm.plot()


def test_detuning_against_first_order_octupole(ring):
    """Detuning from tracking (NAFF, 1024 turns, actions up to 2e-6 m) agrees with the
    first-order octupole formula within 1% (measured: 0.01% for dQx/dJx, 0.2% for the cross
    term, 0.4% for dQy/dJy: the second-order terms at these amplitudes)."""
    lat, rp, tw = ring
    m = octupole_detuning(lat, tw)
    actions = np.linspace(2e-7, 2e-6, 4)
    dx = jacc.nonlinear.detuning(lat, rp, tw, actions, 1024, plane="x")
    dy = jacc.nonlinear.detuning(lat, rp, tw, actions, 1024, plane="y")
    assert dx.dqx_dj == pytest.approx(m[0, 0], rel=1e-2)
    assert dx.dqy_dj == pytest.approx(m[1, 0], rel=1e-2)
    assert dy.dqx_dj == pytest.approx(m[0, 1], rel=1e-2)
    assert dy.dqy_dj == pytest.approx(m[1, 1], rel=1e-2)
    import matplotlib

    matplotlib.use("Agg")
    dx.plot()
