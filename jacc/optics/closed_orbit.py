"""Closed orbit by Newton iteration on the one-turn map, differentiable to any order.

The fixed point ``u* = F(u*)`` of the coordinates being solved for (``x, px, y, py`` at a
given ``pt`` for 4D optics; all six with RF for 6D) is found by Newton's method inside a
``lax.while_loop`` with a fixed iteration budget. Its derivatives come from the implicit
function theorem through a ``jax.custom_jvp``:

    du* = (I - dF/du)^-1 (dF/dp dp)   at u*,

so forward and reverse mode, and derivatives of derivatives (chromaticity w.r.t. a
parameter), are exact at convergence; the iterations are never differentiated. Failure to
converge is reported in the result (``converged``, ``residual``), never as a silent NaN:
a non-finite iterate is replaced by the start guess and flagged.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


class ClosedOrbitOptions(eqx.Module):
    """Newton iteration settings of the closed-orbit search.

    Attributes:
        tol: convergence threshold on the orbit mismatch ``max |F(u) - u|`` [m, rad; for 6D
            also m and 1]. The multiple-shooting solver (`jacc.twiss`) applies one more
            linear Newton step after it, so its orbit is good to about ``tol^2``; the
            transfer matrices are evaluated within ``tol`` of it, which moves the tunes
            by about ``tol`` times the sextupoles' focusing (IOTA: 3e-9 at 1e-10, 3e-11
            at the default 1e-12, where a start guess off by the bends' integration error,
            ~1e-11 m, takes one Newton step).
        max_iter: iteration budget (the loop runs at most this many Newton steps).
    """

    tol: float = eqx.field(static=True, default=1e-12)
    max_iter: int = eqx.field(static=True, default=20)

    def __check_init__(self):
        if not (isinstance(self.tol, (int, float)) and self.tol > 0):
            raise ValueError(f"ClosedOrbitOptions: tol must be a positive number, got {self.tol!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"ClosedOrbitOptions: max_iter must be an integer >= 1, got {self.max_iter!r}")


class ClosedOrbit(NamedTuple):
    """Result of the closed-orbit search.

    Attributes:
        v: the closed orbit at the start of the ring, ``(x, px, y, py, t, pt)``.
        converged: True when ``residual <= tol`` with finite iterates.
        residual: ``max |F(u) - u|`` at ``v`` [m, rad].
        iterations: Newton steps taken.
    """

    v: jax.Array
    converged: jax.Array
    residual: jax.Array
    iterations: jax.Array


def make_closed_orbit(one_turn: Callable, free: tuple[int, ...], opts: ClosedOrbitOptions):
    """Build ``solve(table, v_fixed) -> ClosedOrbit``.

    Args:
        one_turn: ``f(table, v (6,)) -> v (6,)``, pure and differentiable.
        free: indices of the coordinates solved for (``(0, 1, 2, 3)`` for 4D, ``range(6)``
            for 6D); the others are held at their value in ``v_fixed``.
        opts: `ClosedOrbitOptions`.

    ``v_fixed`` also gives the start guess of the free coordinates; the result does not
    depend on it (its derivative w.r.t. those entries is zero).
    """
    free = np.asarray(free, dtype=np.int32)
    n = len(free)
    held = np.asarray([i for i in range(6) if i not in set(free.tolist())], dtype=np.int32)

    def assemble(vfix, u):
        return vfix.at[free].set(u, unique_indices=True)

    def residual(u, table, vfix):
        return one_turn(table, assemble(vfix, u))[free] - u

    def res_and_jac(u, table, vfix):
        jac, r = jax.jacfwd(lambda u_: (lambda r_: (r_, r_))(residual(u_, table, vfix)),
                            has_aux=True)(u)
        return r, jac

    def newton(table, vfix):
        u0 = vfix[free]

        def cond(state):
            _, r, _, it = state
            err = jnp.max(jnp.abs(r))
            return (err > opts.tol) & (it < opts.max_iter) & jnp.isfinite(err)

        def body(state):
            u, r, jac, it = state
            u = u - jnp.linalg.solve(jac, r)
            r, jac = res_and_jac(u, table, vfix)
            return u, r, jac, it + 1

        r0, j0 = res_and_jac(u0, table, vfix)
        u, r, _, it = lax.while_loop(cond, body, (u0, r0, j0, jnp.asarray(0)))
        err = jnp.max(jnp.abs(r))
        ok = jnp.isfinite(err) & jnp.all(jnp.isfinite(u))
        converged = ok & (err <= opts.tol)
        u = jnp.where(ok, u, u0)
        err = jnp.where(ok, err, jnp.inf)
        return u, converged, err, it

    @jax.custom_jvp
    def solve_free(table, vfix):
        u, converged, err, it = newton(table, vfix)
        return u, converged.astype(float), err, it.astype(float)

    @solve_free.defjvp
    def solve_free_jvp(primals, tangents):
        table, vfix = primals
        dtable, dvfix = tangents
        out = solve_free(table, vfix)
        u = out[0]
        # the start guess does not move the fixed point: only the held coordinates count
        dvfix = dvfix.at[free].set(0.0, unique_indices=True)
        jac = jax.jacfwd(residual)(u, table, vfix)
        _, rhs = jax.jvp(lambda tb, vf: residual(u, tb, vf), (table, vfix), (dtable, dvfix))
        du = -jnp.linalg.solve(jac, rhs)
        # masked by the primal status only: a mask that looks at the tangent would not be
        # linear in it, and reverse mode must transpose this rule
        du = jnp.where(out[1] > 0.5, du, 0.0)
        zero = jnp.zeros(())
        return out, (du, zero, zero, zero)

    def solve(table, vfix) -> ClosedOrbit:
        vfix = jnp.asarray(vfix, dtype=float)
        u, conv, err, it = solve_free(table, vfix)
        conv, err, it = lax.stop_gradient((conv, err, it))
        return ClosedOrbit(assemble(vfix, u), conv > 0.5, err, it.astype(jnp.int32))

    solve.held = held
    return solve


def closed_orbit(lat, rp, *, method: str = "4d", delta0: float = 0.0, model=None,
                 options: ClosedOrbitOptions | None = None) -> ClosedOrbit:
    """Closed orbit of a ring at its start (convenience wrapper, not cached).

    Args:
        lat, rp: `jacc.Lattice` and `jacc.ReferenceParticle`.
        method: ``"4d"`` (RF off, ``pt`` fixed by ``delta0``) or ``"6d"`` (RF on).
        delta0: momentum deviation dp/p0 of the 4D orbit.
        model: preset (default `jacc.Xsuite()`).
    """
    from jacc.engine import TrackingEngine
    from jacc.engine.tracker import table_from_dynamic

    from .one_turn import make_one_turn, rf_off
    from .twiss import start_vector

    engine = TrackingEngine(lat, rp, model, specialise=False)
    spec = engine.spec
    opts = options or ClosedOrbitOptions()
    table = table_from_dynamic(spec, {k: jnp.asarray(v) for k, v in spec.dynamic_init.items()})
    one_turn = make_one_turn(spec)
    if method == "4d":
        solve = make_closed_orbit(one_turn, (0, 1, 2, 3), opts)
        return jax.jit(lambda tb, d: solve(rf_off(spec, tb), start_vector(d, spec.ref.beta0)))(
            table, jnp.asarray(delta0, float))
    if method == "6d":
        solve = make_closed_orbit(one_turn, tuple(range(6)), opts)
        return jax.jit(lambda tb: solve(tb, jnp.zeros(6)))(table)
    raise ValueError(f"closed_orbit: method must be '4d' or '6d', got {method!r}")
