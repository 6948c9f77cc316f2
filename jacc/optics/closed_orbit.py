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
from jax.custom_derivatives import SymbolicZero


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


class PeriodicOrbit(NamedTuple):
    """Closed orbit at every scan step, with each step's output and Jacobian there.

    Attributes:
        z: (n_steps, 6) orbit at the entrance of each step; ``z[0]`` is the start.
        f: (n_steps, 6) orbit at the exit of each step.
        e: (n_steps, 6, 6) Jacobian of each step at ``z`` (its transfer matrix).
        m: (n_steps, 6, 6) their products from the start, ``m[j] = e[j] ... e[0]``.
        converged, residual, iterations: as in `ClosedOrbit` (``residual`` is the largest
            mismatch between a step's output and the next step's input, closure included).
    """

    z: jax.Array
    f: jax.Array
    e: jax.Array
    m: jax.Array
    converged: jax.Array
    residual: jax.Array
    iterations: jax.Array


def make_periodic_orbit(steps_fe: Callable, steps_f: Callable, n_steps: int, free: tuple[int, ...],
                        opts: ClosedOrbitOptions, passive: tuple[int, ...] = ()):
    """Build ``solve(table, v_fixed) -> PeriodicOrbit`` by multiple shooting.

    The unknowns are the orbit at every step's entrance; Newton's method on the chain
    ``z[j+1] = F_j(z[j])`` closed by ``z[0][free] = F_last(z[-1])[free]`` (the held
    coordinates of ``z[0]`` are those of ``v_fixed``) evaluates all elements side by side
    and solves the linearised chain with a parallel prefix product (`parallel`), so no
    iteration tracks the line sequentially. The iteration stops when the mismatch is below
    ``opts.tol``; a last Newton step is then applied to the linearised chain (``z += dz``,
    ``F += E dz``, no new evaluation), which leaves a mismatch of order ``tol^2`` and
    makes coordinates that feed back into nothing (``passive``: ``t`` with RF off) exact.
    On momentum without kicks and with exact bend flows the start guess is the orbit: one
    evaluation; Xsuite's default bend integrator leaves a ~1e-11 m reference-orbit error,
    above the default ``tol``: one Newton step, two evaluations.

    The solution ``(z, f, e, m)`` is one `jax.custom_jvp` function: tangents come from the
    implicit function theorem (a linear solve with the converged ``e``, no iteration is
    differentiated) and, for ``e``, from one pass of second derivatives along ``dz``;
    derivatives of any order are exact at convergence.

    Args:
        steps_fe: ``(table, Z) -> (F, E)`` (outputs and Jacobians of every step).
        steps_f: ``(table, Z) -> F``.
        n_steps: number of steps.
        free: coordinates closed over the turn (4D: ``(0, 1, 2, 3)``; 6D: all).
        passive: coordinates no step's output depends on except their own (4D: ``t``),
            left out of the convergence test (the last linear step makes them exact).
    """
    from .chain import Chain
    from .parallel import cumulative_products

    chain = Chain(n_steps, tuple(int(i) for i in free), tuple(passive))
    held = chain.held
    residuals, linear_solve, solve_prefix = chain.residuals, chain.linear_solve, chain.solve_prefix

    def error(z, f, vfix):
        return chain.error(z, f, vfix)

    def newton(table, vfix):
        z0 = jnp.broadcast_to(vfix, (n_steps, 6))

        def cond(state):
            err, it = state[3], state[4]
            return (it == 0) | ((err > opts.tol) & (it <= opts.max_iter) & jnp.isfinite(err))

        def body(state):
            # step from the previous evaluation (none before the first), then evaluate: one
            # instance of the element maps in the program (compile time)
            z, f, e, _, it = state
            z = lax.cond(it > 0,
                         lambda: z + linear_solve(e, residuals(z, f), vfix[held] - z[0][held])[0],
                         lambda: z)
            f, e = steps_fe(table, z)
            return z, f, e, error(z, f, vfix), it + 1

        empty = (jnp.zeros_like(z0), jnp.broadcast_to(jnp.eye(6), (n_steps, 6, 6)))
        state = (z0, *empty, jnp.asarray(jnp.inf), jnp.asarray(0))
        z, f, e, err, it = lax.while_loop(cond, body, state)
        # the last Newton step on the linearised chain: no evaluation needed
        dz, m = linear_solve(e, residuals(z, f), vfix[held] - z[0][held])
        z, f = z + dz, f + jnp.einsum("nij,nj->ni", e, dz)
        ok = jnp.isfinite(err) & jnp.all(jnp.isfinite(z)) & jnp.all(jnp.isfinite(e))
        converged = ok & (err <= opts.tol)
        z, f = (jnp.where(ok, a, b) for a, b in ((z, z0), (f, z0)))
        fine = ok & jnp.isfinite(e)
        e = jnp.where(fine, e, 0.0)
        m = jnp.where(ok & jnp.all(fine) & jnp.isfinite(m), m, 0.0)
        err = jnp.where(ok, err, jnp.inf)
        return z, f, e, m, converged.astype(float), err, (it - 1).astype(float)

    solution = jax.custom_jvp(newton)

    def solution_jvp(primals, tangents):
        table, vfix = primals
        dtable, dvfix = tangents
        out = solution(table, vfix)
        z, f, e, m = out[:4]
        dz0_held = jnp.zeros(len(held)) if isinstance(dvfix, SymbolicZero) else dvfix[held]
        if isinstance(dtable, SymbolicZero):  # e.g. d/d delta: the elements do not move
            dz = solve_prefix(m, jnp.zeros_like(z), dz0_held)
            _, (df, de) = jax.jvp(lambda z_: steps_fe(table, z_), (z,), (dz,))
        else:
            _, rhs = jax.jvp(lambda tb: steps_f(tb, z), (table,), (dtable,))
            dz = linear_solve(e, rhs, dz0_held)[0]
            (_, _), (df, de) = jax.jvp(steps_fe, (table, z), (dtable, dz))
        _, dm = jax.jvp(cumulative_products, (e,), (de,))
        ok = out[4] > 0.5
        # masked by the primal status only (linear in the tangents, so reverse mode can
        # transpose the rule)
        dz, df, de, dm = (jnp.where(ok, t, 0.0) for t in (dz, df, de, dm))
        zero = jnp.zeros(())
        return out, (dz, df, de, dm, zero, zero, zero)

    solution.defjvp(solution_jvp, symbolic_zeros=True)

    def solve(table, vfix) -> PeriodicOrbit:
        vfix = jnp.asarray(vfix, dtype=float)
        z, f, e, m, conv, err, it = solution(table, vfix)
        conv, err, it = lax.stop_gradient((conv, err, it))
        return PeriodicOrbit(z, f, e, m, conv > 0.5, err, it.astype(jnp.int32))

    solve.solve_prefix = solve_prefix
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
