"""FieldMap (diffrax) against the exact solenoid map, its inverse and its symplecticity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc.physics.base import symplectic_form


def _lats(bz=0.4, length=0.5):
    rp = jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    ks = bz * rp.charge / rp.brho
    fm = jacc.FieldMap(name="fm", l=length, z=[0.0, length], bz=[bz, bz])
    sol = jacc.Solenoid(name="so", l=length, ks=ks)
    return rp, jacc.Lattice.from_elements([fm]), jacc.Lattice.from_elements([sol])


def test_uniform_field_map_equals_the_solenoid():
    rp, lfm, lso = _lats()
    x = np.random.default_rng(2).uniform(-1, 1, (16, 6)) * np.array([2e-3, 2e-3, 2e-3, 2e-3, 1e-3, 1e-3])
    a = jacc.track(lfm, rp, x, record=None).x
    b = jacc.track(lso, rp, x, record=None).x
    # adaptive Dopri8 at rtol 1e-12 against the exact solenoid flow
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.slow  # adaptive Dormand-Prince under jacfwd and grad: half a minute to compile
def test_field_map_is_symplectic_to_its_tolerance_and_differentiable():
    rp, lfm, _ = _lats()
    lfm = jacc.Lattice.from_elements([jacc.FieldMap(name="fm", l=0.6, z=[0.0, 0.2, 0.4, 0.6],
                                                    bz=[0.0, 0.5, 0.5, 0.0], diff_params=["bz"])])
    engine = jacc.TrackingEngine(lfm, rp)
    spec, _, dyn = engine.make_model()
    f = engine.make_tracking_func(spec, record=None)
    m = jax.jacfwd(lambda v: f(dyn, v[None], 1).x[0])(jnp.full(6, 1e-3))
    J = symplectic_form()
    # not a symplectic scheme: symplectic to the integration tolerance
    assert np.max(np.abs(m.T @ J @ m - J)) < 1e-10
    loss = lambda d: jnp.sum(f(d, jnp.full((1, 6), 1e-3), 1).x ** 2)
    g = jax.grad(loss)(dyn)["fm.bz"]
    h = 1e-4
    e = jnp.eye(4)[1]
    fd = (loss({"fm.bz": dyn["fm.bz"] + h * e}) - loss({"fm.bz": dyn["fm.bz"] - h * e})) / (2 * h)
    # central difference on a quadratic-in-field loss, step 1e-4 T
    np.testing.assert_allclose(g[1], fd, rtol=1e-6)
