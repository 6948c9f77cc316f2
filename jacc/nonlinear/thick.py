"""The DN insert as a thick element: its continuous potential integrated with diffrax.

Through the insert's drift the paraxial equations of motion are ``x' = px``, ``y' = py`` and
``(px', py') = F(x, y, s)``, the force per unit length of the lens slices in the limit of
infinitely many: the thin-lens kick of `jacc.physics.nllens` with ``knll -> t c^2 / beta(s)``
[per metre] and ``cnll = c sqrt(beta(s))``. diffrax's symplectic `SemiImplicitEuler`
integrates it in ``n_steps`` fixed steps, arranged into leapfrog (second order in the step):
a reference for the thin slicing on a single pass.
"""

from __future__ import annotations

import functools

import diffrax
import jax
import jax.numpy as jnp

from jacc.lattices.nonlinear_insert import NonlinearInsert
from jacc.physics.nllens import nonlinear_lens_kick

__all__ = ["thick_insert_pass"]


@functools.partial(jax.jit, static_argnames=("n_steps",))
def _pass(q0, p0, t, c, beta_c, length, n_steps: int):
    h = length / n_steps

    def force(s, q, args):
        s = s + 0.5 * h  # diffrax kicks at the step's start with the drifted position: see below
        beta = beta_c + (s - 0.5 * length) ** 2 / beta_c
        fx, fy = nonlinear_lens_kick(q[0], q[1], t * c * c / beta, c * jnp.sqrt(beta))
        return jnp.stack([fx, fy])

    terms = (diffrax.ODETerm(lambda s, p, args: p), diffrax.ODETerm(force))
    # A diffrax step is drift h then kick; started half a drift back and ended with half a
    # drift, with kicks at mid-step s, the steps compose into leapfrog (second order).
    sol = diffrax.diffeqsolve(terms, diffrax.SemiImplicitEuler(), 0.0, length, h, (q0 - 0.5 * h * p0, p0),
                              saveat=diffrax.SaveAt(t1=True), max_steps=n_steps + 1)
    q, p = sol.ys[0][-1], sol.ys[1][-1]
    return q + 0.5 * h * p, p


def thick_insert_pass(x0, insert: NonlinearInsert, length: float, n_steps: int = 4096):
    """Coordinates (n, 6) after one pass through the thick insert of ``length`` [m].

    Args:
        x0: (n, 6) coordinates at the insert entrance (``t`` and ``pt`` are passed through:
            the lens kicks do not depend on momentum, as in the thin model).
        n_steps: fixed steps (error ~ 1 / n_steps^2).
    """
    x0 = jnp.atleast_2d(jnp.asarray(x0, dtype=jnp.float64))
    run = jax.vmap(lambda q, p: _pass(q, p, insert.t, insert.c, insert.beta_centre(length), length, n_steps))
    q, p = run(x0[:, jnp.array([0, 2])], x0[:, jnp.array([1, 3])])
    return x0.at[:, 0].set(q[:, 0]).at[:, 2].set(q[:, 1]).at[:, 1].set(p[:, 0]).at[:, 3].set(p[:, 1])
