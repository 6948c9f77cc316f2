"""Optics as a program: gradients against finite differences, the compilation cache,
envelopes, and the table views (rows, pandas, plot).

A small ring (8 cells of FODO with sector bends and sextupoles, Xsuite's default bend
model) keeps compilation short; the physics of the same code is compared against MAD-X and
xtrack in test_optics_madx.py and test_optics_xtrack.py.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc.engine.tracker import table_from_dynamic
from jacc.optics import TwissOptions, beam_sizes, make_envelope_func, propagate_envelope, trace_count

N_CELLS = 8


def small_ring(kqf=0.9):
    """8 FODO cells, 45 degree sector bends, sextupoles, a knob on the focusing family."""
    qf = jacc.Quadrupole(name="qf", l=0.4, k1=kqf)
    qd = jacc.Quadrupole(name="qd", l=0.4, k1=-0.85)
    b = jacc.SBend(name="b", l=1.2, angle=2 * np.pi / (2 * N_CELLS))
    sf = jacc.Sextupole(name="sf", l=0.1, k2=1.5)
    sd = jacc.Sextupole(name="sd", l=0.1, k2=-2.5)
    d = jacc.Drift(name="d", l=0.35)
    bpm = jacc.Monitor(name="bpm")
    cell = jacc.Line("cell", [qf, d, sf, d, b, d, bpm, qd, d, sd, d, b, d])
    return jacc.Lattice.from_line(jacc.Line("ring", [cell], repeat=N_CELLS),
                                  knobs={"kqf": kqf}, expressions={"qf": {"k1": "kqf"}})


@pytest.fixture(scope="module")
def rp():
    return jacc.ReferenceParticle.from_kinetic_energy("electron", 150e6)


@pytest.fixture(scope="module")
def flagged(rp):
    lat = small_ring()
    lat.knobs["kqf"].diff = True
    lat["qd"].diff_params = ["k1"]
    lat["sf"].diff_params = ["k2"]
    lat["sd:3"].diff_params = ["k2"]  # one placement only
    engine = jacc.TrackingEngine(lat, rp, specialise=False)
    spec, _, dyn = engine.make_model()
    return engine, spec, dyn


def optics_loss(tw):
    """Smooth in every input: tunes, chromaticities, a beta and dispersion average, one row."""
    return (tw.qx + 0.7 * tw.qy + 0.05 * tw.dqx - 0.03 * tw.dqy + 0.01 * jnp.mean(tw.betx ** 2)
            + 0.5 * jnp.mean(tw.dx) + tw.bety[17] * tw.alfx[23])


def loss_and_dqx(tw):
    return jnp.stack([optics_loss(tw), tw.dqx])


@pytest.fixture(scope="module")
def derivatives(flagged):
    """One forward-mode program for two outputs (the loss and dqx), compiled once."""
    engine, spec, dyn = flagged
    g = engine.make_twiss_func(spec)
    outputs = lambda d: loss_and_dqx(g(d))  # noqa: E731
    return jax.jit(outputs), jax.jit(jax.jacfwd(outputs))


def central_difference(f, dyn, k, h):
    up, dn = dict(dyn), dict(dyn)
    up[k], dn[k] = dyn[k] + h, dyn[k] - h
    return (np.asarray(f(up)) - np.asarray(f(dn))) / (2 * h)


def assert_matches_finite_differences(f, derivative, dyn, keys, floor):
    """``derivative[k]`` against central differences of ``f`` for each key, within 1e-6.

    Central differences: truncation ~ h^2 times the third derivative, rounding ~ 1e-16
    |f| / h; with h = 1e-5 both stay below 1e-8 relative, inside the issue's 1e-6.
    ``floor``: every parameter must move ``f`` by more, so that the comparison can fail.
    """
    for k in keys:
        fd = np.atleast_1d(central_difference(f, dyn, k, 1e-5 * max(1.0, abs(float(dyn[k])))))[0]
        d = float(np.atleast_1d(np.asarray(derivative[k]))[0])
        assert abs(fd) > floor, k
        assert abs(d / fd - 1) < 1e-6, (k, d, fd)


def test_twiss_gradient_matches_finite_differences(flagged, derivatives):
    """Forward mode through chromaticity (a second-order pass) and the closed orbit."""
    _, _, dyn = flagged
    outputs, jac = derivatives
    assert sorted(dyn) == ["kqf", "qd.k1", "sd:3.k2", "sf.k2"]
    assert_matches_finite_differences(outputs, jac(dyn), dyn, dyn, 1e-3)


@pytest.mark.slow  # reverse mode through the optics: a minute of compilation
def test_reverse_mode_matches_finite_differences(flagged):
    """jax.grad of first-order optics (tunes, dispersion, beta and alpha at rows)."""
    engine, spec, dyn = flagged
    g = engine.make_twiss_func(spec, options=TwissOptions(chrom=False))
    first = jax.jit(lambda d: (lambda tw: tw.qx + 0.7 * tw.qy + 0.5 * jnp.mean(tw.dx)
                               + tw.bety[17] * tw.alfx[23])(g(d)))
    grad = jax.jit(jax.grad(first))(dyn)
    assert_matches_finite_differences(first, grad, dyn, ("kqf", "qd.k1"), 1e-4)
    # on the design orbit, sextupoles do not enter first-order optics; the bends' Yoshida
    # integrator leaves a ~1e-11 m orbit at which they act (measured 8e-11 here)
    assert abs(float(grad["sf.k2"])) < 1e-9 and abs(float(grad["sd:3.k2"])) < 1e-9


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("JACC_SLOW") != "1",
                    reason="reverse mode through chromaticity compiles for about two minutes; run with JACC_SLOW=1")
def test_reverse_mode_through_chromaticity(flagged, derivatives):
    """jax.jacrev of the loss and dqx (third-order programs) against forward mode and FD."""
    engine, spec, dyn = flagged
    outputs, fwd = derivatives
    rev = jax.jit(jax.jacrev(lambda d: loss_and_dqx(engine.make_twiss_func(spec)(d))))(dyn)
    assert_matches_finite_differences(outputs, rev, dyn, dyn, 1e-3)
    f = fwd(dyn)
    for k in dyn:  # the two modes apply the same rules: rounding only
        np.testing.assert_allclose(np.asarray(rev[k]), np.asarray(f[k]), rtol=1e-9, atol=1e-12)


@pytest.mark.slow  # third-order program: a minute and a half of compilation
def test_chromaticity_gradient_of_a_sextupole_is_linear(flagged, derivatives):
    """d(dqx)/d(k2) is a constant (chromaticity is linear in sextupole strength on momentum
    with no orbit): the derivative at two strengths agrees, and predicts the change."""
    _, _, dyn = flagged
    outputs, jac = derivatives
    other = dict(dyn)
    other["sf.k2"] = dyn["sf.k2"] + 0.5
    s0, s1 = float(jac(dyn)["sf.k2"][1]), float(jac(other)["sf.k2"][1])
    assert abs(s0) > 0.1 and abs(s1 / s0 - 1) < 1e-9
    assert abs((float(outputs(other)[1]) - float(outputs(dyn)[1])) - 0.5 * s0) < 1e-8


def test_new_strengths_reuse_the_compiled_program(rp):
    lat = small_ring()
    tw0 = jacc.twiss(lat, rp)
    n = trace_count()
    lat.set_knob("kqf", 0.95)
    lat["qd"].k1 = -0.8
    lat["sf:2"].k2 = 3.0
    tw1 = jacc.twiss(lat, rp)
    assert trace_count() == n  # strengths, knobs and per-placement values: no new trace
    assert abs(float(tw1.qx) - float(tw0.qx)) > 1e-3  # and the new values were used
    jacc.twiss(small_ring(kqf=1.0), rp)  # another lattice of the same structure
    assert trace_count() == n
    jacc.twiss(lat, rp, options=TwissOptions(chrom=False))  # another program: one trace
    assert trace_count() == n + 1


def test_envelope_of_a_matched_beam_follows_the_beta_functions(rp):
    """A beam matched to the ring optics keeps ``sigma_x^2 = eps betx + (dx sigma_d)^2``."""
    lat = small_ring()
    tw = jacc.twiss(lat, rp)
    ex, ey, sd = 3e-8, 1e-8, 1e-3
    b, a = float(tw.betx[0]), float(tw.alfx[0])
    by, ay = float(tw.bety[0]), float(tw.alfy[0])
    d, dp = float(tw.dx[0]), float(tw.dpx[0])
    s0 = np.zeros((6, 6))
    s0[:2, :2] = ex * np.array([[b, -a], [-a, (1 + a * a) / b]])
    s0[2:4, 2:4] = ey * np.array([[by, -ay], [-ay, (1 + ay * ay) / by]])
    # x = dx delta + ... with delta = pt / beta0 to first order: the covariance is in pt
    b0 = rp.beta0
    disp = np.array([d / b0, dp / b0, 0, 0, 0, 1.0])
    s0 += (b0 * sd) ** 2 * np.outer(disp, disp)
    s0[4, 4] += 1e-6
    env = propagate_envelope(lat, rp, jacc.Envelope(sigma=jnp.asarray(s0), mean=jnp.zeros(6)))
    assert env.name == tw.name and np.allclose(np.asarray(env.s), np.asarray(tw.s))
    sx, sy = beam_sizes(tw, ex, ey, sd)
    # the same linear optics two ways (transfer matrices vs normal form): rounding only
    np.testing.assert_allclose(np.asarray(env.beam_sizes()[:, 0]), np.asarray(sx), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(env.beam_sizes()[:, 2]), np.asarray(sy), rtol=1e-9)
    assert np.ptp(np.asarray(sx)) > 0.2 * float(np.mean(sx))  # the envelope breathes


def test_envelope_in_a_drift_is_analytic(rp):
    lat = jacc.Lattice.from_line(jacc.Line("l", [jacc.Drift(name="d", l=2.0), jacc.Marker(name="m")]))
    s0 = np.diag([1e-6, 1e-8, 4e-6, 2e-8, 1e-6, 1e-8])
    s0[0, 1] = s0[1, 0] = -5e-8
    env = propagate_envelope(lat, rp, jacc.Envelope(sigma=jnp.asarray(s0), mean=jnp.zeros(6)))
    L = 2.0
    sxx = s0[0, 0] + 2 * L * s0[0, 1] + L * L * s0[1, 1]
    assert abs(float(env.sigma[-1, 0, 0]) / sxx - 1) < 1e-12
    assert abs(float(env.sigma[-1, 2, 2]) / (s0[2, 2] + L * L * s0[3, 3]) - 1) < 1e-12
    # and the function behind it is differentiable w.r.t. the initial covariance
    engine = jacc.TrackingEngine(lat, rp, specialise=False)
    h = make_envelope_func(engine.spec)
    table = table_from_dynamic(engine.spec, {})
    dsig = jax.grad(lambda s: h(table, s, jnp.zeros(6)).sigma[-1, 0, 0])(jnp.asarray(s0))
    assert abs(float(dsig[1, 1]) - L * L) < 1e-12 and abs(float(dsig[0, 0]) - 1.0) < 1e-12


def test_rows_pandas_and_plot(rp):
    import matplotlib

    matplotlib.use("Agg")
    lat = small_ring()
    tw = jacc.twiss(lat, rp)
    q = tw.rows["q.*"]
    assert set(q.name) == {"qf", "qd"} and len(q) == 2 * N_CELLS
    assert len(tw.rows["qd:3"]) == 1 and float(tw.rows["qd:3"].s[0]) == pytest.approx(
        float(tw.rows["qd"].s[2]))
    with pytest.raises(KeyError, match="no Twiss row"):
        tw.rows["nothing.*"]
    df = tw.to_pandas()
    assert list(df["name"]) == list(tw.name) and np.allclose(df["betx"], np.asarray(tw.betx))
    assert df.attrs["qx"] == pytest.approx(float(tw.qx))
    fig = tw.plot(lat)
    axes = fig.get_axes()
    assert len(axes) >= 2  # layout above, optics below
    labels = {line.get_label() for ax in axes for line in ax.get_lines()}
    assert {"betx", "bety"} <= labels or any("beta" in lbl for lbl in labels)
    matplotlib.pyplot.close(fig)


def test_sliced_bodies_compose_to_the_element_map(rp):
    """Optics evaluates the faces and slices of integrated bodies as steps of their own:
    the composed map is the element's map (same arithmetic, rounding only), rows still end
    at exits."""
    from jacc.optics.one_turn import make_one_turn
    from jacc.optics.slicing import slice_bodies
    from jacc.physics.bend import xsuite_num_kicks

    lat = small_ring()
    lat["b:2"].dx = 1e-4  # a misaligned bend stays whole
    spec = jacc.TrackingEngine(lat, rp, specialise=False).spec
    sliced, expand = slice_bodies(spec)
    n_kicks = xsuite_num_kicks(1.2, 2 * np.pi / (2 * N_CELLS))
    slices = -(-n_kicks // 7)
    # each aligned bend: entry face, its slices, exit face
    assert slices > 1 and sliced.n_steps == spec.n_steps + (2 * N_CELLS - 1) * (slices + 1)
    v = jnp.array([1e-3, -2e-4, 5e-4, 1e-4, 0.0, 2e-3])
    table = table_from_dynamic(spec, {})
    a = jax.jit(make_one_turn(spec))(table, v)
    b = jax.jit(make_one_turn(sliced))(expand(table), v)
    # rounding only (XLA orders the same operations differently): measured 1e-14 after 16
    # bends, a tenth of the 1e-12 at which the maps are held to xtrack's
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0, atol=1e-13)
    assert sliced.names == spec.names
    # the last step before each placement's exit belongs to the same placement as before
    ends = np.asarray(sliced.step_placement)[np.asarray(sliced.placement_step) - 1]
    np.testing.assert_array_equal(ends, np.asarray(spec.step_placement)[np.asarray(spec.placement_step) - 1])
