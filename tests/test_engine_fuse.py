"""Fusion of runs of linear elements (`fuse_linear`): same tracking, fewer steps.

The fused map is checked against MAD-X's one-turn map of the FODO ring (the golden file,
RF off), and tracking, monitors, gradients and the reversible reverse mode with fusion
against the same programs without it.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc.engine.fuse import FUSED_KERNEL, fuse_linear
from jacc.physics.base import Linear, symplectic_form

# every element type of the two rings that has an exact linear map, modelled by it
LINEAR = jacc.Xsuite(methods={k: Linear() for k in (
    "Drift", "Quadrupole", "SBend", "Sextupole", "DipoleEdge", "HVCorrector", "HKicker",
    "VKicker", "Solenoid", "Multipole", "Octupole")})


@pytest.fixture(scope="module")
def fodo(shared_lattices):
    lat = jacc.Lattice.from_madx(shared_lattices / "fodo40.madx")
    return lat, jacc.lattices.reference_from_beam(lat)


@pytest.fixture(scope="module")
def iota():
    return jacc.lattices.iota()


def _x0(n=64, scale=1e-4):
    return np.random.default_rng(2).normal(size=(n, 6)) * scale


def test_fused_one_turn_map_equals_madx(fodo, shared_lattices):
    lat, rp = fodo
    gold = json.loads((shared_lattices / "fodo40_golden.json").read_text())["rf_off"]
    spec = fuse_linear(jacc.TrackingEngine(lat, rp, model=LINEAR).spec)
    # the RF cavity (off) is not a Linear() step: the rest of the ring is one fused step
    fused = [j for j, k in enumerate(spec.kernel_index) if spec.kernels[k] == FUSED_KERNEL]
    assert len(fused) == 1 and spec.n_steps == 2
    m = spec.table[fused[0], :36].reshape(6, 6)
    ref = np.asarray(gold["one_turn_map_6x6"])
    # the linear-optics tolerances against MAD-X (tests/test_optics_madx.py): tunes 1e-8;
    # the entries within 1e-8 of the largest (measured: 4e-8 absolute, 2.3e-9 of |M| = 17.7)
    np.testing.assert_allclose(m, ref, rtol=0, atol=1e-8 * np.abs(ref).max())
    j = np.asarray(symplectic_form())
    assert np.abs(m.T @ j @ m - j).max() < 1e-12  # a product of symplectic maps
    for plane, q in ((0, gold["Qx"]), (2, gold["Qy"])):
        block = m[plane:plane + 2, plane:plane + 2]
        mu = np.arccos(np.trace(block) / 2)
        if block[0, 1] < 0:
            mu = 2 * np.pi - mu
        assert abs(mu / (2 * np.pi) - q % 1) < 1e-8


@pytest.mark.parametrize("name", ["fodo", "iota"])
def test_fused_tracking_equals_unfused(request, name):
    lat, rp = request.getfixturevalue(name)
    x0 = _x0()
    a = jacc.track(lat, rp, x0, 20, model=LINEAR, record="centroid")
    b = jacc.track(lat, rp, x0, 20, model=LINEAR, record="centroid", fuse_linear=True)
    # the same affine maps, multiplied in another order: rounding (measured 2e-15 on t,
    # which reaches 1e-2 m after 20 turns)
    np.testing.assert_allclose(np.asarray(b.x), np.asarray(a.x), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(np.asarray(b.alive), np.asarray(a.alive))
    if a.monitors is None:  # the FODO ring has no monitors
        assert b.monitors is None
        return
    assert a.monitors.names == b.monitors.names
    np.testing.assert_allclose(np.asarray(b.monitors.centroid), np.asarray(a.monitors.centroid),
                               rtol=0, atol=1e-13)


def test_runs_stop_at_monitors_apertures_and_flags(iota):
    lat, rp = iota
    lat = lat.copy()
    lat["qa1r"].diff_params = ["k1"]
    engine = jacc.TrackingEngine(lat, rp, model=LINEAR)
    spec = engine.spec
    assert any(k.aperture is not None for k in spec.kernels), "IOTA has apertures"
    with_monitors = fuse_linear(spec, spec.monitors)
    without = fuse_linear(spec)
    assert without.n_steps < with_monitors.n_steps < spec.n_steps
    # every kept step is the original one, and every step left unfused is one that must be
    fk = with_monitors.kernels.index(FUSED_KERNEL)
    kept = [int(p) for p, k in zip(with_monitors.step_placement, with_monitors.kernel_index) if k != fk]
    flagged_rows = {r for s in spec.setters for r in s.rows}
    for r in flagged_rows:
        assert int(spec.step_placement[r]) in kept
    for j in range(spec.n_steps):
        k = spec.kernels[spec.kernel_index[j]]
        if k.aperture is not None:
            assert int(spec.step_placement[j]) in kept
    # monitors still see the state after their own step
    for i in spec.monitors:
        done = with_monitors.placement_step[i]
        assert done == 0 or int(with_monitors.step_placement[done - 1]) <= i


@pytest.mark.parametrize("reverse", ["checkpoint", "reversible"])
def test_gradient_through_fused_tracking(fodo, reverse):
    lat, rp = fodo
    lat = lat.copy()
    lat["qf"].diff_params = ["k1"]
    engine = jacc.TrackingEngine(lat, rp, model=LINEAR)
    spec, _, dyn = engine.make_model()
    x0 = jnp.asarray(_x0(16, 1e-3))

    f = engine.make_tracking_func(spec, record=None, reverse=reverse, fuse_linear=True)
    loss = jax.jit(lambda d: jnp.sum(f(d, x0, 5).x[:, :4] ** 2))
    g_fused = jax.grad(loss)(dyn)
    # against central differences (the flagged quadrupoles stay out of the runs)
    h = 1e-6
    k = float(dyn["qf.k1"])
    fd = (loss({"qf.k1": jnp.asarray(k + h)}) - loss({"qf.k1": jnp.asarray(k - h)})) / (2 * h)
    np.testing.assert_allclose(g_fused["qf.k1"], fd, rtol=1e-6)


def test_nothing_to_fuse_returns_the_spec(fodo):
    lat, rp = fodo
    spec = jacc.TrackingEngine(lat, rp).spec  # Xsuite() models: no Linear() step
    assert fuse_linear(spec) is spec
