"""Closed orbit by Newton iteration on the one-turn map, with an exact derivative.

The iteration runs with gradients stopped; one last Newton step from the converged point is
taken differentiably, which gives the implicit-function derivative of the fixed point
(``du*/dp = -(dF/du)^-1 dF/dp`` at ``F(u*) = 0``). Failure to converge is reported in the
result (``converged``, ``residual``), never as a silent NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax


class ClosedOrbitOptions(eqx.Module):
    """Newton iteration settings.

    Attributes:
        tol: convergence threshold on max |M(u) - u| [m, rad].
        max_iter: iteration budget.
    """

    tol: float = eqx.field(static=True, default=1e-14)
    max_iter: int = eqx.field(static=True, default=20)

    def __check_init__(self):
        if not self.tol > 0 or self.max_iter < 1:
            raise ValueError(f"ClosedOrbitOptions: tol > 0 and max_iter >= 1 required, got {self}")


class ClosedOrbit(NamedTuple):
    """Closed orbit ``v`` (6-vector at the start), status and the last residual."""

    v: jax.Array
    converged: jax.Array
    residual: jax.Array


def closed_orbit_4d(one_turn, pt, opts: ClosedOrbitOptions = ClosedOrbitOptions()) -> ClosedOrbit:
    """Transverse closed orbit at energy deviation ``pt`` (``t`` = 0, ``pt`` held fixed).

    Args:
        one_turn: ``f(v (6,)) -> v (6,)``, pure and differentiable.
        pt: energy deviation of the orbit (MAD-X ``pt``).
    """
    pt = jnp.asarray(pt, dtype=float)

    def full(u, pt_):
        return jnp.concatenate([u, jnp.stack([jnp.zeros_like(pt_), pt_])])

    def residual(u, pt_):
        return one_turn(full(u, pt_))[:4] - u

    def newton(u, pt_):
        r = residual(u, pt_)
        jac = jax.jacfwd(residual)(u, pt_)
        return u - jnp.linalg.solve(jac, r), jnp.max(jnp.abs(r))

    def cond(state):
        _, res, it = state
        return (res > opts.tol) & (it < opts.max_iter) & jnp.isfinite(res)

    def body(state):
        u, _, it = state
        u, res = newton(u, lax.stop_gradient(pt))
        return u, res, it + 1

    u0 = jnp.zeros(4)
    u, res, _ = lax.while_loop(cond, body, (u0, jnp.asarray(jnp.inf), 0))
    u = lax.stop_gradient(u)
    ok = jnp.isfinite(u).all()
    u = jnp.where(ok, u, 0.0)
    u_final, last = newton(u, pt)  # differentiable step: the implicit derivative
    final_res = jnp.max(jnp.abs(residual(lax.stop_gradient(u_final), lax.stop_gradient(pt))))
    converged = ok & (final_res <= max(opts.tol, 1e-12) * 100) & jnp.isfinite(last)
    u_final = jnp.where(jnp.isfinite(u_final), u_final, 0.0)
    return ClosedOrbit(full(u_final, pt), converged, final_res)
