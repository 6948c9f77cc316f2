"""Standard containers: PhaseSpace, Envelope, Twiss, NamedValues as pytrees (jit, vmap, grad)."""

import sys
import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jacc.containers import TWISS_COLUMNS, Envelope, NamedValues, PhaseSpace, Twiss
from jacc.particles import ReferenceParticle

EPS = np.finfo(float).eps


@pytest.fixture(scope="module")
def proton():
    return ReferenceParticle.from_kinetic_energy("proton", 2.5e6)


@pytest.fixture(scope="module")
def beam(proton):
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(400, 6)) * np.array([1e-3, 1e-4, 2e-3, 2e-4, 1e-2, 1e-3]) + 1e-4
    weights = rng.uniform(0.1, 3.0, 400)
    alive = rng.uniform(size=400) > 0.2
    return PhaseSpace.from_array(coords, proton, weights=weights, alive=alive)


def _drift(length):
    m = np.eye(6)
    m[0, 1] = m[2, 3] = length
    return m


def _thin_quad(k1l):
    m = np.eye(6)
    m[1, 0] = -k1l
    m[3, 2] = k1l
    return m


# ---------------------------------------------------------------- PhaseSpace


def test_phase_space_construction(proton):
    ps = PhaseSpace.from_array(np.zeros(6), proton)
    assert ps.coords.shape == (1, 6) and ps.coords.dtype == jnp.float64
    assert ps.weights.shape == (1,) and bool(ps.alive[0]) and ps.n == 1
    with pytest.raises(ValueError, match=r"\(n, 6\)"):
        PhaseSpace.from_array(np.zeros((3, 5)), proton)
    with pytest.raises(ValueError, match="weights"):
        PhaseSpace.from_array(np.zeros((3, 6)), proton, weights=np.ones(2))
    with pytest.raises(ValueError, match="alive"):
        PhaseSpace.from_array(np.zeros((3, 6)), proton, alive=np.ones(4, bool))
    with pytest.raises(TypeError, match="ReferenceParticle"):
        PhaseSpace.from_array(np.zeros((3, 6)), proton.reference())


def test_columns(beam):
    for i, name in enumerate(("x", "px", "y", "py", "t", "pt")):
        np.testing.assert_array_equal(getattr(beam, name), beam.coords[:, i])


def test_centroid_and_covariance_against_numpy(beam):
    c = np.asarray(beam.coords)[np.asarray(beam.alive)]
    w = np.asarray(beam.weights)[np.asarray(beam.alive)]
    # Same sums, different order of accumulation.
    np.testing.assert_allclose(beam.centroid(), np.average(c, axis=0, weights=w), rtol=1e-13)
    np.testing.assert_allclose(beam.covariance(), np.cov(c.T, aweights=w, bias=True), rtol=1e-12, atol=0)
    env = beam.envelope()
    np.testing.assert_array_equal(env.sigma, beam.covariance())
    np.testing.assert_array_equal(env.mean, beam.centroid())


def test_lost_particles_do_not_count(beam):
    # Move the lost particles far away: the moments must not change at all.
    far = jnp.where(beam.alive[:, None], beam.coords, 1e3)
    moved = eqx.tree_at(lambda p: p.coords, beam, far)
    np.testing.assert_allclose(moved.covariance(), beam.covariance(), rtol=1e-14, atol=0)  # same arithmetic


def test_phase_space_jit_vmap_grad(beam, proton):
    @jax.jit
    def shifted(ps, dx):
        return eqx.tree_at(lambda p: p.coords, ps, ps.coords.at[:, 0].add(dx))

    out = shifted(beam, 1e-3)
    assert isinstance(out, PhaseSpace) and out.ref == proton
    np.testing.assert_allclose(out.centroid()[0], beam.centroid()[0] + 1e-3, rtol=1e-12)  # one addition per particle

    # vmap over a batch of beams (stacked leaves, shared static reference particle).
    batch = jax.vmap(lambda s: PhaseSpace(beam.coords * s, beam.weights, beam.alive, proton))(jnp.array([1.0, 2.0]))
    cov = jax.jit(jax.vmap(lambda p: p.covariance()))(batch)
    np.testing.assert_allclose(cov[1], 4 * cov[0], rtol=1e-13)  # covariance is quadratic in coordinates

    # d var(x) / d x_i = 2 w_i (x_i - <x>) / sum(w) for alive particles, 0 for lost ones.
    g = jax.grad(lambda c: PhaseSpace(c, beam.weights, beam.alive, proton).covariance()[0, 0])(beam.coords)
    w = jnp.where(beam.alive, beam.weights, 0.0)
    expected = 2 * w * (beam.x - beam.centroid()[0]) / jnp.sum(w)
    np.testing.assert_allclose(g[:, 0], expected, rtol=1e-10, atol=1e-18)  # mean's gradient sums to ~0
    assert np.all(np.asarray(g[:, 1:]) == 0.0)


def test_gaussian_sample(proton):
    env = Envelope.from_twiss(2.0, -0.5, 1e-6, 5.0, 1.0, 2e-6, 1e-2, 1e-3, dx=1.5, dpx=0.1, beta0=proton.beta0)
    ps = PhaseSpace.gaussian(proton, 100_000, env, key=jax.random.key(1))
    assert ps.coords.shape == (100_000, 6)
    sizes = jnp.sqrt(jnp.diagonal(ps.covariance()))
    # Sample rms of n Gaussian draws scatters by 1/sqrt(2n) = 0.22%: 1% is 4.5 sigma.
    np.testing.assert_allclose(sizes, env.beam_sizes(), rtol=0.01)
    np.testing.assert_allclose(ps.centroid(), 0.0, atol=5 * float(env.beam_sizes().max()) / np.sqrt(1e5))
    # A singular covariance (no bunch length) still samples, with t identically 0 up to rounding.
    flat = Envelope.from_twiss(2.0, 0.0, 1e-6, 5.0, 0.0, 1e-6, 0.0, 1e-3)
    ps0 = PhaseSpace.gaussian(proton, 1000, flat.sigma, key=jax.random.key(2), mean=jnp.arange(6.0) * 1e-3)
    assert np.all(np.isfinite(ps0.coords))
    np.testing.assert_allclose(ps0.t, 4e-3, atol=1e-15)  # eigh leaves ~eps * sigma residue


# ---------------------------------------------------------------- Envelope


def test_envelope_from_twiss_beam_sizes(proton):
    betx, alfx, emitx, bety, alfy, emity = 3.0, -1.2, 2e-6, 7.0, 0.4, 5e-7
    sigma_t, sigma_pt, dx, dpx, dy, dpy = 0.05, 2e-3, 1.3, -0.2, 0.1, 0.03
    env = Envelope.from_twiss(betx, alfx, emitx, bety, alfy, emity, sigma_t, sigma_pt,
                              dx=dx, dpx=dpx, dy=dy, dpy=dpy, beta0=proton.beta0)
    sd = sigma_pt / proton.beta0  # sigma_delta to first order
    gx, gy = (1 + alfx**2) / betx, (1 + alfy**2) / bety
    expected = np.sqrt([betx * emitx + (dx * sd) ** 2, gx * emitx + (dpx * sd) ** 2,
                        bety * emity + (dy * sd) ** 2, gy * emity + (dpy * sd) ** 2,
                        sigma_t**2, sigma_pt**2])
    np.testing.assert_allclose(env.beam_sizes(), expected, rtol=1e-15)  # a few roundings
    s = np.asarray(env.sigma)
    assert s[0, 1] == pytest.approx(-alfx * emitx + dx * dpx * sd**2, rel=1e-14)
    assert s[0, 5] == pytest.approx(dx * sigma_pt**2 / proton.beta0, rel=1e-15)
    np.testing.assert_array_equal(s, s.T)
    # Projected emittance with dispersion: eps^2 + eps sd^2 (gamma D^2 + 2 alpha D D' + beta D'^2).
    ex = np.sqrt(emitx**2 + emitx * sd**2 * (gx * dx**2 + 2 * alfx * dx * dpx + betx * dpx**2))
    ey = np.sqrt(emity**2 + emity * sd**2 * (gy * dy**2 + 2 * alfy * dy * dpy + bety * dpy**2))
    # det of a 2x2 block: products of numbers ~1e-12 cancelling down to ~1e-12 (a few ulps, then sqrt).
    np.testing.assert_allclose(env.emittances(), [ex, ey, sigma_t * sigma_pt], rtol=1e-12)


def test_envelope_without_dispersion_recovers_emittances():
    env = Envelope.from_twiss(3.0, -1.2, 2e-6, 7.0, 0.4, 5e-7, 0.05, 2e-3)
    # beta*gamma - alpha^2 = 1 in floating point: a few ulps relative to beta*gamma ~ 1 + alpha^2.
    np.testing.assert_allclose(env.emittances(), [2e-6, 5e-7, 1e-4], rtol=1e-14)
    assert np.all(np.asarray(env.sigma)[:4, 4:] == 0)


def test_envelope_needs_beta0_with_dispersion():
    with pytest.raises(ValueError, match="beta0"):
        Envelope.from_twiss(1.0, 0.0, 1e-6, 1.0, 0.0, 1e-6, 1e-3, 1e-3, dx=1.0)
    with pytest.raises(ValueError, match=r"\(6, 6\)"):
        Envelope(sigma=np.eye(4))


def test_envelope_propagation(beam):
    # Drift of length L: beta(L) = beta - 2 alpha L + gamma L^2 (Courant-Snyder transport).
    betx, alfx, emitx, length = 3.0, -1.2, 2e-6, 1.7
    env = Envelope.from_twiss(betx, alfx, emitx, 1.0, 0.0, 1e-6, 0.0, 0.0)
    out = env.propagate(_drift(length))
    gx = (1 + alfx**2) / betx
    assert out.sigma[0, 0] / emitx == pytest.approx(betx - 2 * alfx * length + gx * length**2, rel=1e-14)
    assert -out.sigma[0, 1] / emitx == pytest.approx(alfx - gx * length, rel=1e-14)
    # A symplectic map conserves the projected emittances of an uncoupled beam.
    m = _drift(0.5) @ _thin_quad(0.8) @ _drift(1.0) @ _thin_quad(-0.6) @ _drift(0.3)
    np.testing.assert_allclose(env.propagate(m).emittances(), env.emittances(), rtol=1e-12)  # ulps of cancelling dets
    # Envelope and particles agree: the covariance of mapped particles is M S M^T (linear algebra).
    mapped = PhaseSpace(beam.coords @ m.T, beam.weights, beam.alive, beam.ref)
    via_env = beam.envelope().propagate(m)
    np.testing.assert_allclose(mapped.covariance(), via_env.sigma, rtol=1e-12, atol=1e-22)
    np.testing.assert_allclose(mapped.centroid(), via_env.mean, rtol=1e-12, atol=1e-20)


def test_envelope_grad_and_jit():
    def size_at_end(k1l):
        env = Envelope.from_twiss(3.0, 0.0, 1e-6, 3.0, 0.0, 1e-6, 0.0, 0.0)
        m = jnp.asarray(_drift(2.0)) @ jnp.eye(6).at[1, 0].set(-k1l).at[3, 2].set(k1l)
        return env.propagate(m).beam_sizes()[0] ** 2

    # sigma_x^2 = emit (beta (1 - 2 k)^2 + L^2 / beta) at alpha = 0, L = 2: derivative -4 beta emit (1 - 2 k).
    # The beam has sigma_t = sigma_pt = 0: their zero sizes must not make the gradient NaN.
    k = 0.1
    g = jax.jit(jax.grad(size_at_end))(k)
    assert float(g) == pytest.approx(-4 * 3.0 * 1e-6 * (1 - 2 * k), rel=1e-13)


def test_envelope_from_twiss_differentiable(proton):
    def sigma_x(betx, dx):
        env = Envelope.from_twiss(betx, 0.3, 2e-6, 4.0, 0.0, 1e-6, 1e-2, 1e-3, dx=dx, beta0=proton.beta0)
        return env.beam_sizes()[0]

    betx, dx = 5.0, 0.8
    s = float(sigma_x(betx, dx))
    sd = 1e-3 / proton.beta0
    gb, gd = jax.jit(jax.grad(sigma_x, argnums=(0, 1)))(betx, dx)
    # d sigma / d beta = emit / (2 sigma), d sigma / d D = D sigma_delta^2 / sigma: a few roundings.
    assert float(gb) == pytest.approx(2e-6 / (2 * s), rel=1e-14)
    assert float(gd) == pytest.approx(dx * sd**2 / s, rel=1e-14)
    sizes = jax.vmap(sigma_x, in_axes=(0, None))(jnp.array([1.0, 4.0]), 0.0)
    np.testing.assert_allclose(sizes, np.sqrt(2e-6 * np.array([1.0, 4.0])), rtol=1e-15)


# ---------------------------------------------------------------- Twiss


def _twiss(n=4, **extra):
    cols = {c: np.linspace(1.0, 2.0, n) + i for i, c in enumerate(TWISS_COLUMNS)}
    return Twiss(name=[f"e{i}" for i in range(n)], **cols, **extra)


def test_twiss_fields_and_access():
    tw = _twiss(qx=0.31, qy=0.29)
    assert tw.name == ("e0", "e1", "e2", "e3") and len(tw) == 4
    assert tw.betx.dtype == jnp.float64 and tw.qx.shape == ()
    assert tw["betx"] is tw.betx and tw["qy"] is tw.qy
    assert tw.betx1 is None and tw.dqx is None
    assert tw.columns() == TWISS_COLUMNS
    assert "betx2" in _twiss(betx1=np.ones(4), bety1=np.ones(4), betx2=np.ones(4), bety2=np.ones(4)).columns()
    with pytest.raises(KeyError, match="betx"):
        tw["beta_x"]
    with pytest.raises(ValueError, match="'betx'"):
        Twiss(name=["a", "b"], **{c: np.ones(3 if c == "betx" else 2) for c in TWISS_COLUMNS})
    with pytest.raises(ValueError, match="'qx'"):
        _twiss(qx=np.ones(2))
    # Names are structure, not leaves.
    leaves = jax.tree_util.tree_leaves(tw)
    assert len(leaves) == len(TWISS_COLUMNS) + 2


def _fodo_twiss(k1l, length=1.0):
    """Periodic Twiss of a thin-lens FODO cell (analytic), as a Twiss pytree."""
    cos_mu = 1 - 2 * (k1l * length) ** 2  # thin lenses f = 1/k1l, drifts of `length`
    mu = jnp.arccos(cos_mu)
    sin_mu = jnp.sin(mu)
    # At the centre of the focusing lens: beta_max = 2 L (1 + sin(mu/2)) / sin(mu).
    bmax = 2 * length * (1 + jnp.sin(mu / 2)) / sin_mu
    bmin = 2 * length * (1 - jnp.sin(mu / 2)) / sin_mu
    z = jnp.zeros(2)
    return Twiss(name=("qf", "qd"), s=jnp.array([0.0, length]), betx=jnp.stack([bmax, bmin]),
                 bety=jnp.stack([bmin, bmax]), alfx=z, alfy=z, mux=jnp.stack([0.0, mu / 4 / jnp.pi]),
                 muy=jnp.stack([0.0, mu / 4 / jnp.pi]), dx=z, dpx=z, dy=z, dpy=z, x=z, px=z, y=z, py=z,
                 qx=mu / (2 * jnp.pi), qy=mu / (2 * jnp.pi))


def test_twiss_jit_vmap_grad():
    k = 0.3
    tw = jax.jit(_fodo_twiss)(k)
    assert isinstance(tw, Twiss) and tw.name == ("qf", "qd") and tw.dqx is None
    np.testing.assert_allclose(tw.betx, _fodo_twiss(k).betx, rtol=1e-15)  # same ops, jitted

    batch = jax.vmap(_fodo_twiss)(jnp.array([0.2, 0.3, 0.4]))
    assert batch.betx.shape == (3, 2) and batch.qx.shape == (3,)
    np.testing.assert_allclose(batch.betx[1], tw.betx, rtol=1e-15)

    # Gradients of any column and of a summary scalar, against central differences
    # (step 1e-6: truncation ~1e-12, rounding ~1e-10 relative).
    for loss in (lambda t: t.betx[0], lambda t: jnp.sum(t.bety ** 2), lambda t: t.qx):
        g = jax.grad(lambda kk: loss(_fodo_twiss(kk)))(k)
        h = 1e-6
        fd = (loss(_fodo_twiss(k + h)) - loss(_fodo_twiss(k - h))) / (2 * h)
        assert float(g) == pytest.approx(float(fd), rel=1e-8)

    # Gradient with respect to the Twiss pytree itself has the same structure (None stays None).
    gt = jax.grad(lambda t: t.betx[1] + 2 * t.qy)(tw)
    assert isinstance(gt, Twiss) and gt.dqx is None
    assert float(gt.betx[1]) == 1.0 and float(gt.qy) == 2.0 and float(gt.betx[0]) == 0.0


def test_twiss_table_methods_delegate(monkeypatch):
    tw = _twiss()
    fake = types.ModuleType("jacc.optics.table")
    fake.to_pandas = lambda t: ("frame", t)
    fake.rows = lambda t: ("rows", len(t))
    fake.plot = lambda t, *a, **k: ("plot", a, k)
    monkeypatch.setitem(sys.modules, "jacc.optics.table", fake)
    import jacc.optics

    monkeypatch.setattr(jacc.optics, "table", fake, raising=False)
    assert tw.to_pandas() == ("frame", tw)
    assert tw.rows == ("rows", 4)
    assert tw.plot("betx", ax=None) == ("plot", ("betx",), {"ax": None})


# ---------------------------------------------------------------- NamedValues


def test_named_values():
    nv = NamedValues({"kq01": 1.5}, kq02=-0.7, orbit=[1e-3, 2e-3])
    assert set(nv.names) == {"kq01", "kq02", "orbit"} and len(nv) == 3 and "kq01" in nv
    assert nv["orbit"].shape == (2,) and nv["kq01"].dtype == jnp.float64
    with pytest.raises(KeyError, match="kq01"):
        nv["kq03"]
    with pytest.raises(KeyError, match="unknown"):
        nv.replace(kq03=1.0)
    assert float(nv.replace(kq01=2.0)["kq01"]) == 2.0
    with pytest.raises(TypeError, match="str"):
        NamedValues({1: 2.0})
    # Names are static structure: different names give different tree structures.
    assert jax.tree_util.tree_structure(nv) != jax.tree_util.tree_structure(NamedValues(a=1.0, b=2.0, c=[1, 2]))


def test_named_values_jit_vmap_grad():
    nv = NamedValues(a=2.0, b=[1.0, 3.0])

    def loss(v):
        return v["a"] ** 2 * jnp.sum(v["b"])

    g = jax.jit(jax.grad(loss))(nv)
    assert isinstance(g, NamedValues) and g.names == nv.names
    assert float(g["a"]) == 2 * 2.0 * 4.0 and np.allclose(g["b"], [4.0, 4.0])  # exact small integers
    batched = jax.vmap(loss)(NamedValues(a=jnp.array([1.0, 2.0]), b=jnp.ones((2, 2))))
    np.testing.assert_array_equal(batched, [2.0, 8.0])
