"""The engine contract: model split, pure tracking function, gradients, losses, monitors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc.physics.base import symplectic_form


def _ring(n_cells=8, with_aperture=False, knob=True):
    qf = jacc.Quadrupole(name="qf", l=0.5, k1=0.8)
    qd = jacc.Quadrupole(name="qd", l=0.5, k1=-0.8)
    d = jacc.Drift(name="d", l=1.0)
    sf = jacc.Sextupole(name="sf", l=0.2, k2=2.0)
    bpm = jacc.Monitor(name="bpm")
    hc = jacc.HVCorrector(name="hc", xangle=1e-5, yangle=-2e-5)
    items = [qf, d, sf, d, bpm, qd, d, hc, d]
    if with_aperture:
        items.insert(2, jacc.Marker(name="ap", aperture=jacc.Aperture(shape="circle", a=4e-3)))
    cell = jacc.Line("cell", items)
    lat = jacc.Lattice.from_line(jacc.Line("ring", [cell], repeat=n_cells),
                                 knobs={"kqd": -0.8} if knob else None,
                                 expressions={"qd": {"k1": "kqd"}} if knob else None)
    return lat


@pytest.fixture(scope="module")
def rp():
    return jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)


@pytest.fixture(scope="module")
def x0():
    rng = np.random.default_rng(1)
    return rng.normal(size=(64, 6)) * np.array([1e-3, 1e-4, 1e-3, 1e-4, 1e-3, 1e-4])


def test_dynamic_holds_exactly_the_flagged_parameters(rp):
    lat = _ring()
    lat["qf"].diff_params = ["k1"]
    lat["sf:3"].diff_params = ["k2"]
    lat.knobs["kqd"].diff = True
    spec, static, dynamic = jacc.TrackingEngine(lat, rp).make_model()
    assert sorted(dynamic) == ["kqd", "qf.k1", "sf:3.k2"]
    assert float(dynamic["qf.k1"]) == 0.8 and float(dynamic["kqd"]) == -0.8
    assert static.table.shape == (spec.n_steps, spec.table.shape[1])


def test_tracking_func_is_pure_and_matches_track(rp, x0):
    lat = _ring()
    lat["qf"].diff_params = ["k1"]
    engine = jacc.TrackingEngine(lat, rp)
    spec, _, dynamic = engine.make_model()
    f = jax.jit(engine.make_tracking_func(spec), static_argnums=2)
    a = f(dynamic, x0, 5)
    b = jacc.track(lat, rp, x0, n_turns=5)
    # same program structure and inputs: identical to the last bit
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
    # changing a flagged value through `dynamic` equals changing the lattice
    dyn2 = dict(dynamic, **{"qf.k1": jnp.asarray(0.81)})
    lat2 = lat.copy()
    lat2["qf"].k1 = 0.81
    np.testing.assert_allclose(f(dyn2, x0, 5).x, jacc.track(lat2, rp, x0, n_turns=5).x, rtol=0, atol=1e-15)


def test_knob_moves_every_dependent_element(rp, x0):
    lat = _ring()
    lat.knobs["kqd"].diff = True
    engine = jacc.TrackingEngine(lat, rp)
    spec, _, dyn = engine.make_model()
    f = engine.make_tracking_func(spec)
    lat2 = lat.copy()
    lat2.set_knob("kqd", -0.85)
    assert lat2["qd"].k1 == -0.85
    np.testing.assert_allclose(f(dict(dyn, kqd=jnp.asarray(-0.85)), x0, 3).x,
                               jacc.track(lat2, rp, x0, n_turns=3).x, atol=1e-15)


@pytest.fixture(scope="module")
def flagged_loss(rp, x0):
    lat = _ring()
    lat["qf"].diff_params = ["k1"]
    lat["sf:2"].diff_params = ["k2"]
    lat["hc"].diff_params = ["xangle"]
    lat.knobs["kqd"].diff = True
    engine = jacc.TrackingEngine(lat, rp)
    spec, _, dyn = engine.make_model()
    f = engine.make_tracking_func(spec, record=None)

    @jax.jit
    def loss(d):
        # large amplitudes so that sextupoles matter
        return jnp.sum(f(d, 10 * x0, 10).x[:, :4] ** 2)

    return loss, dyn, jax.jit(jax.grad(loss))(dyn)


@pytest.mark.parametrize("key", ["qf.k1", "sf:2.k2", "kqd", "hc.xangle"])
def test_gradient_of_tracking_loss_matches_finite_differences(flagged_loss, key):
    loss, dyn, grad = flagged_loss
    v0 = dyn[key]
    at = lambda v: loss(dict(dyn, **{key: v}))
    h = 1e-5 * max(abs(float(v0)), 1e-4)
    fd = (8 * (at(v0 + h) - at(v0 - h)) - (at(v0 + 2 * h) - at(v0 - 2 * h))) / (12 * h)
    # fourth-order central differences, step 1e-5 relative: truncation O(h^4) and rounding
    # ~1e-16/h both stay well below 1e-6
    np.testing.assert_allclose(grad[key], fd, rtol=1e-6)


def test_one_turn_map_is_symplectic(rp):
    lat = _ring()
    engine = jacc.TrackingEngine(lat, rp)
    spec, _, dyn = engine.make_model()
    f = engine.make_tracking_func(spec, record=None)
    m = jax.jacfwd(lambda v: f(dyn, v[None, :], 1).x[0])(jnp.full(6, 1e-4))
    J = symplectic_form()
    # products of ~70 element maps in float64: 1e-12 leaves two orders of margin
    assert np.max(np.abs(m.T @ J @ m - J)) < 1e-12


def test_aperture_flags_losses_without_nan(rp):
    lat = _ring(with_aperture=True)
    x = np.zeros((4, 6))
    x[1, 0] = 5e-3  # outside the 4 mm circle at once
    x[2, 1] = 0.9   # px so large the exact square roots fail: must be flagged, not NaN
    x[3, 0] = 1e-3
    res = jacc.track(lat, rp, x, n_turns=20)
    assert np.all(np.isfinite(np.asarray(res.x)))
    alive = np.asarray(res.alive)
    assert alive[0] and not alive[1] and not alive[2]
    assert int(res.lost_turn[1]) == 0
    lost_at = int(res.lost_element[1])
    assert lat.elements[lost_at].name == "ap"
    # a lost particle keeps the coordinates it had where it was lost: outside the circle
    assert np.hypot(float(res.x[1, 0]), float(res.x[1, 2])) > 4e-3
    assert np.all(np.isfinite(np.asarray(res.monitors.centroid)))


def test_monitor_centroids_are_the_mean_of_recorded_coordinates(rp, x0):
    lat = _ring()
    full = jacc.track(lat, rp, x0, n_turns=3, record="coordinates")
    cen = jacc.track(lat, rp, x0, n_turns=3, record="centroid")
    assert cen.monitors.centroid.shape == (3, 8, 6)
    np.testing.assert_allclose(cen.monitors.centroid, full.monitors.coordinates.mean(axis=2), atol=1e-18)
    # the last monitor of the last turn sees what tracking to it gives
    bpm_idx = [p.index for p in lat.elements if p.name == "bpm"]
    assert list(cen.monitors.names)[:2] == ["bpm:1", "bpm:2"]
    np.testing.assert_allclose(np.asarray(cen.monitors.s), [lat.elements[i].s_end for i in bpm_idx])


def test_reverse_mode_over_turns_recomputes_instead_of_storing(rp, x0):
    lat = _ring()
    lat["qf"].diff_params = ["k1"]
    engine = jacc.TrackingEngine(lat, rp)
    spec, _, dyn = engine.make_model()
    f = engine.make_tracking_func(spec, record=None)

    def residual_bytes(n_turns):
        loss = lambda d: jnp.sum(f(d, x0, n_turns).x ** 2)
        _, vjp = jax.vjp(loss, dyn)
        leaves = jax.tree_util.tree_leaves(vjp)
        return sum(l.size * l.dtype.itemsize for l in leaves if hasattr(l, "size"))

    few, many = residual_bytes(10), residual_bytes(100)
    per_turn_state = x0.size * 8 * 1.5  # coordinates (+ alive flags) kept at each turn boundary
    # with checkpointing only the turn boundaries are stored, never the element states
    assert many - few < 90 * per_turn_state * 1.5
    assert many < 100 * len(spec.kernel_index) * x0.size * 8 / 4


def test_bad_inputs_are_named(rp):
    lat = _ring()
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        jacc.track(lat, rp, np.zeros((3, 5)))
    with pytest.raises(TypeError, match="ReferenceParticle"):
        jacc.TrackingEngine(lat, "electron")
    with pytest.raises(TypeError, match="preset"):
        jacc.TrackingEngine(lat, rp, model="xsuite")
    lat["qf"].diff_params = ["k1"]
    f = jacc.TrackingEngine(lat, rp).make_tracking_func()
    with pytest.raises(KeyError, match=r"dynamic parameters missing: \['qf.k1'\]"):
        f({}, np.zeros((1, 6)))


def test_specialised_models_give_the_same_map(rp, x0):
    lat = _ring()
    lat["qd"].k1s = 0.05  # one skew quadrupole keeps its kick; the others become one flow
    fast = jacc.TrackingEngine(lat, rp)
    slow = jacc.TrackingEngine(lat, rp, specialise=False)
    kinds = {type(k.physics).__name__ for k in fast.spec.kernels}
    assert "NormalChromaticQuadrupole" in kinds and "ChromaticQuadrupole" in kinds
    a = fast.make_tracking_func(record=None)(fast.make_model()[2], x0, 5).x
    b = slow.make_tracking_func(record=None)(slow.make_model()[2], x0, 5).x
    # composition of exact flows versus one flow: equal to rounding (a few ulp per element)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16)


def test_reversible_reverse_mode_gives_the_same_gradient(rp, x0):
    lat = _ring()
    lat["qf"].diff_params = ["k1"]
    lat["sf"].diff_params = ["k2"]
    lat.knobs["kqd"].diff = True
    engine = jacc.TrackingEngine(lat, rp)
    spec, _, dyn = engine.make_model()
    ck = engine.make_tracking_func(spec, record=None)
    rv = engine.make_tracking_func(spec, record=None, reverse="reversible")
    loss = lambda f: jax.jit(jax.grad(lambda d: jnp.sum(f(d, 10 * x0, 50).x[:, :4] ** 2)))
    # the same maps in two compiled programs: XLA may round differently in each (it does at
    # -O0, the suite's quick compilation), so equal to rounding after 50 turns
    np.testing.assert_allclose(rv(dyn, x0, 50).x, ck(dyn, x0, 50).x, rtol=1e-12, atol=1e-16)
    g1, g2 = loss(ck)(dyn), loss(rv)(dyn)
    # re-tracking 50 turns backwards recovers the states to ~1e-13 relative
    for k in dyn:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-9)
    with pytest.raises(ValueError, match="record=None"):
        engine.make_tracking_func(spec, reverse="reversible")
