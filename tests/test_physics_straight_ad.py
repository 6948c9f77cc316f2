"""Straight-element maps: symplecticity of every model and gradients against finite differences.

The cases (physics, method, parameters) are those compared with xtrack in
``test_physics_straight.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jacc.physics.base import Reference, symplectic_form
from test_physics_straight import CASE_IDS, CASES, SPECIES, Case, particles, reference

# |M^T J M - J| of a float64 Jacobian with entries up to ~100 (R56 of low-beta protons).
TOL_SYMPLECTIC = 1e-12
# Central differences with relative steps 1e-6: truncation ~1e-10 relative; rounding is
# bounded separately from the magnitude of the loss.
TOL_GRAD_REL = 1e-6


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_map_is_symplectic(case):
    p = case.jparams()
    # The reference enters as traced arrays, so one compilation serves both species.
    jac = jax.jit(lambda ref, x: jax.vmap(jax.jacfwd(lambda xi: case.method(case.phys, p, xi, ref)))(x))
    j = np.asarray(symplectic_form())
    for species in SPECIES:
        ref = Reference(*(jnp.asarray(v) for v in reference(species)))
        m = np.asarray(jac(ref, jnp.asarray(particles(n=6))))
        err = np.max(np.abs(np.einsum("nji,jk,nkl->nil", m, j, m) - j))
        assert err < TOL_SYMPLECTIC, f"{case.name} ({species}): |M^T J M - J| = {err:.2e}"


def _loss_fn(case: Case, ref: Reference, x0, weights):
    """A scalar of the output that involves every coordinate of every particle, and its scale."""
    track = jax.vmap(lambda p, x: case.method(case.phys, p, x, ref), in_axes=(None, 0))
    return jax.jit(lambda p: jnp.sum(track(p, x0) * weights)), jax.jit(lambda p: jnp.sum(jnp.abs(track(p, x0) * weights)))


# Gradients are checked for the 2.5 MeV protons only: the code paths do not depend on the
# species, and low beta0 makes the longitudinal terms (and their derivatives) largest.
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_match_finite_differences(case):
    ref = reference("proton")
    x0 = jnp.asarray(particles(n=8))
    weights = jnp.asarray(np.random.default_rng(3).normal(size=(8, 6)))
    loss, magnitude = _loss_fn(case, ref, x0, weights)
    p = case.jparams()
    grads = jax.jit(jax.grad(loss))(p)
    # Rounding in the difference of two sums of magnitude ``scale``.
    scale = float(magnitude(p))
    for name, value in p.items():
        g = np.atleast_1d(np.asarray(grads[name]))
        assert np.all(np.isfinite(g)), f"{case.name}: NaN gradient for {name}"
        flat = np.atleast_1d(np.asarray(value))
        for i in range(flat.size):
            h = 1e-6 * max(abs(flat[i]), 1.0)
            up, dn = flat.copy(), flat.copy()
            up[i] += h
            dn[i] -= h
            shape = np.shape(value)
            f_up = loss({**p, name: jnp.asarray(up.reshape(shape))})
            f_dn = loss({**p, name: jnp.asarray(dn.reshape(shape))})
            fd = float(f_up - f_dn) / (2 * h)
            noise = 10 * np.finfo(float).eps * scale / h
            assert abs(g[i] - fd) <= TOL_GRAD_REL * abs(g[i]) + noise, (
                f"{case.name}: d/d{name}[{i}] = {g[i]:.12e}, finite differences {fd:.12e}"
            )
