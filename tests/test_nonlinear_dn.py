"""The Danilov-Nagaitsev insert: lens slices, invariants (analytic and along tracked orbits)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc.lattices import NonlinearInsert
from jacc.nonlinear import dn_hamiltonian, dn_second_invariant, invariants

# the rest of IOTA as its linear map (the DN theory's T-insert), so that what the invariants
# measure is the thin slicing of the insert alone
LINEAR_KINDS = ("Drift", "Quadrupole", "SBend", "DipoleEdge", "Sextupole", "HVCorrector", "VKicker",
                "Solenoid", "RFCavity")


def linear_rest():
    return jacc.Xsuite(methods={k: jacc.Linear() for k in LINEAR_KINDS})


def integrable_iota(insert):
    """IOTA with the insert, sextupoles and RF off (on-momentum 4D motion)."""
    lat, rp = jacc.lattices.iota(nonlinear_insert=insert)
    for k in ("sk1", "sk2", "sk3", "sk4", "sk5", "sk6"):
        lat.set_knob(k, 0.0)
    lat["rfc"].voltage = 0.0
    return lat, rp


def launch():
    x0 = np.zeros((4, 6))
    x0[:, 0] = [1e-3, 2e-3, 2e-3, 1e-3]
    x0[:, 1] = [0.0, 1e-4, 0.0, -2e-4]
    x0[:, 2] = [1e-3, 0.5e-3, 1e-3, 3e-3]
    return x0


def test_invariants_commute_with_hamiltonian():
    """{H, I} = 0: I is a second invariant of the DN Hamiltonian (checked by autodiff at
    random points inside the singular points; relative to |grad H| |grad I|)."""
    rng = np.random.default_rng(1)
    t, c = 0.4, 0.01
    z = jnp.asarray(rng.uniform(-1, 1, (20, 4)) * np.array([0.8 * c, 0.5 * c, 0.8 * c, 0.5 * c]))
    gh = jax.vmap(jax.grad(dn_hamiltonian), (0, None, None))(z, t, c)
    gi = jax.vmap(jax.grad(dn_second_invariant), (0, None, None))(z, t, c)
    bracket = gh[:, 0] * gi[:, 1] - gh[:, 1] * gi[:, 0] + gh[:, 2] * gi[:, 3] - gh[:, 3] * gi[:, 2]
    scale = jnp.linalg.norm(gh, axis=1) * jnp.linalg.norm(gi, axis=1)
    assert float(jnp.max(jnp.abs(bracket) / scale)) < 1e-12


def test_hamiltonian_near_axis():
    """Near the axis the potential is t (x^2 - y^2): H = ((1 + 2t) x^2 + (1 - 2t) y^2) / 2."""
    t, c, a = 0.3, 0.01, 1e-5
    assert float(dn_hamiltonian(jnp.array([a, 0.0, 0.0, 0.0]), t, c)) == pytest.approx((1 + 2 * t) * a * a / 2, rel=1e-8)
    assert float(dn_hamiltonian(jnp.array([0.0, 0.0, a, 0.0]), t, c)) == pytest.approx((1 - 2 * t) * a * a / 2, rel=1e-8)


def test_slices_follow_the_beta_function():
    """knll ~ 1/beta, cnll ~ sqrt(beta), and sum ds / beta is the insert's phase advance."""
    ins = NonlinearInsert(t=0.4, c=0.01, n_slices=64)
    L = 1.8
    s, knll, cnll = ins.slices(L)
    beta = jacc.lattices.insert_beta(s - L / 2, ins.beta_centre(L))
    assert np.allclose(knll * beta, ins.t * ins.c ** 2 * L / 64, rtol=1e-14)
    assert np.allclose(cnll / np.sqrt(beta), ins.c, rtol=1e-14)
    assert np.sum(L / 64 / beta) == pytest.approx(2 * math.pi * ins.mu0, rel=1e-4)  # midpoint rule


def test_iota_insert_placement():
    """Slices between nlr1 and nlr2, markers (with their apertures) kept, length unchanged; the
    design beta at the centre is IOTA's (twiss of the bare ring: 0.65389 m)."""
    bare, _ = jacc.lattices.iota()
    ins = NonlinearInsert(n_slices=18)
    lat, _ = jacc.lattices.iota(nonlinear_insert=ins)
    assert lat.length == pytest.approx(bare.length, abs=1e-12)
    lenses = [e for e in lat.elements if e.name.startswith("nll_") and "drift" not in e.name]
    assert len(lenses) == 18
    s = np.array([e.s_start for e in lenses]) - lat.elements[lat.placements_of("nlr1")[0]].s_start
    assert np.allclose(s, ins.slices(1.8)[0], atol=1e-9)
    assert lat.count_by_type()["Marker"] == bare.count_by_type()["Marker"]
    assert lat["mn09"].aperture is not None
    assert ins.beta_centre(1.8) == pytest.approx(0.65389, abs=2e-5)
    with pytest.raises(ValueError, match="placed exactly once"):
        jacc.lattices.with_nonlinear_insert(bare, NonlinearInsert(start="nowhere"))


@pytest.fixture(scope="module")
def tracked_16():
    ins = NonlinearInsert(t=0.4, c=0.01, n_slices=16)
    lat, rp = integrable_iota(ins)
    return invariants(lat, rp, launch(), 300, ins, model=linear_rest())


def test_invariants_along_orbits(tracked_16):
    """16 slices, 300 turns: H and I conserved to 0.6% (the slicing error; 0.44-0.50% over
    500 turns, 0.1% with 32 slices: see the slow test), and the container plots."""
    sh, si = tracked_16.spread()
    assert tracked_16.alive.all()
    assert np.max(sh) < 6e-3 and np.max(si) < 6e-3
    import matplotlib

    matplotlib.use("Agg")
    tracked_16.plot()


@pytest.mark.slow
def test_invariants_1e4_turns_quadratic_in_slices():
    """Over 1e4 turns: spread below 0.7% with 16 slices, and about 4x smaller per doubling
    (ratio > 3); breaking the T-insert's symmetry (one quadrupole +1%) multiplies it by > 10."""
    spreads = {}
    for n in (16, 32, 64):
        ins = NonlinearInsert(t=0.4, c=0.01, n_slices=n)
        lat, rp = integrable_iota(ins)
        inv = invariants(lat, rp, launch(), 10_000, ins, model=linear_rest())
        assert inv.alive.all()
        spreads[n] = max(np.max(inv.spread()[0]), np.max(inv.spread()[1]))
    assert spreads[16] < 7e-3
    assert spreads[16] / spreads[32] > 3.0 and spreads[32] / spreads[64] > 3.0
    lat, rp = integrable_iota(ins)
    q = next(e for e in lat.elements if lat.definitions[e.name].element_name == "Quadrupole")
    lat[q.name].k1 *= 1.01
    broken = invariants(lat, rp, launch(), 10_000, ins, model=linear_rest())
    ok = broken.alive
    worst = max(np.nanmax(broken.spread()[0][ok]), np.nanmax(broken.spread()[1][ok]))
    assert worst > 10 * spreads[64]


def test_invariant_gradients_against_finite_differences():
    """Gradients of H and I w.r.t. the point and t (for fits of the insert) match central
    differences (step 1e-7 of the scale: truncation and rounding below 1e-6 relative)."""
    z = jnp.array([3e-3, 1e-3, 2e-3, -1e-3])
    t, c = 0.35, 0.01
    for f in (dn_hamiltonian, dn_second_invariant):
        g = jax.grad(f, argnums=(0, 1))(z, t, c)
        for k in range(4):
            h = 1e-7 * c
            dz = jnp.zeros(4).at[k].set(h)
            fd = (f(z + dz, t, c) - f(z - dz, t, c)) / (2 * h)
            assert float(g[0][k]) == pytest.approx(float(fd), rel=1e-6, abs=1e-12 * c)
        fd_t = (f(z, t + 1e-6, c) - f(z, t - 1e-6, c)) / 2e-6
        assert float(g[1]) == pytest.approx(float(fd_t), rel=1e-6)
