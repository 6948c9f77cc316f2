"""The DN insert as one thick element: a single pass through its continuous potential.

`thick_insert_pass` tracks coordinates through the lattice element `NonlinearInsertField`
(physics in `jacc.physics.nlinsert`): the insert's drift carrying the force per unit length
of the lens slices in the limit of infinitely many (``knll -> t c^2 / beta(s)`` per metre,
``cnll = c sqrt(beta(s))``), integrated with diffrax's symplectic `SemiImplicitEuler` in
``n_steps`` fixed steps arranged into leapfrog (second order in the step). It is the
reference the thin slicing converges to; the same element goes into a lattice with
``NonlinearInsert(..., thick=True)`` or directly, and tracks through `jacc.track`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jacc.lattices.nonlinear_insert import NonlinearInsert
from jacc.physics.nlinsert import insert_flow

__all__ = ["thick_insert_pass"]


@functools.partial(jax.jit, static_argnames=("n_steps", "beta0"))
def _pass(x0, t, c, beta_c, length, n_steps: int, beta0: float):
    p = {"l": length, "t": t, "c": c, "beta_c": beta_c, "s_c": 0.5 * length}
    return jax.vmap(lambda v: insert_flow(v, p, n_steps, beta0))(x0)


def thick_insert_pass(x0, insert: NonlinearInsert, length: float, n_steps: int = 4096, rp=None):
    """Coordinates (n, 6) after one pass through the thick insert of ``length`` [m].

    Args:
        x0: (n, 6) coordinates at the insert entrance.
        insert: strength ``t``, scale ``c`` and phase advance ``mu0`` of the insert.
        n_steps: fixed steps (error ~ 1 / n_steps^2).
        rp: reference particle (its ``beta0`` enters the drift's ``t``, and ``pt`` the
            drift's transverse velocity); None: ``beta0 = 1``.
    """
    x0 = jnp.atleast_2d(jnp.asarray(x0, dtype=jnp.float64))
    beta0 = 1.0 if rp is None else float(rp.beta0)
    return _pass(x0, insert.t, insert.c, insert.beta_centre(length), length, n_steps, beta0)
