"""Orbit of a chain of steps by multiple shooting, with the chromatic derivative of its
transfer matrices, from one instance of the element maps.

The unknowns are the orbit at every step's entrance; Newton's method on the chain
``z[j+1] = F_j(z[j])`` (closed over the turn for the ``free`` coordinates of a ring; a
line holds every coordinate of ``z[0]``) evaluates all elements side by side and solves
the linearised chain with a parallel prefix product (`chain.Chain`), so no iteration
tracks the line sequentially.

``chromatic`` adds ``dE``, the derivative of every step's Jacobian along the orbit's
tangent ``t`` (the implicit derivative of the orbit for a change ``dheld`` of the held
coordinates, e.g. ``pt`` per unit ``delta``):

- ``"exact"``: by automatic differentiation, a JVP of the Jacobians along ``t`` after the
  loop; the program then holds the element maps twice, once to first order (the loop) and
  once to second order;
- ``"difference"``: the same loop goes on, after Newton has converged, to evaluate the maps
  at four points along ``t``, and a four-point central difference of their Jacobians gives
  ``dE`` (`parallel.TANGENT_STEP`, about 1e-10 relative). One loop body holds the only
  copy of the element maps, which about halves the compile time.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from .chain import Chain
from .parallel import TANGENT_OFFSETS, TANGENT_WEIGHTS, cumulative_products


CHROMATIC = (None, "exact", "difference")


def along_tangent(steps_fe, table, z, t):
    """The derivative of every step's Jacobian along ``t`` (a JVP: second derivatives)."""
    return jax.jvp(lambda z_: steps_fe(table, z_)[1], (z,), (t,))[1]


class PeriodicOrbit(NamedTuple):
    """Orbit at every step, with each step's output and Jacobian there.

    Attributes:
        z: (n_steps, 6) orbit at the entrance of each step; ``z[0]`` is the start.
        f: (n_steps, 6) orbit at the exit of each step.
        e: (n_steps, 6, 6) Jacobian of each step at ``z`` (its transfer matrix).
        m: (n_steps, 6, 6) their products from the start, ``m[j] = e[j] ... e[0]``.
        de: (n_steps, 6, 6) derivative of ``e`` along the orbit tangent (with ``chromatic``),
            else a zero scalar.
        converged, residual, iterations: status (``residual``: the largest mismatch between
            a step's output and the next step's input, closure included).
    """

    z: jax.Array
    f: jax.Array
    e: jax.Array
    m: jax.Array
    de: jax.Array
    converged: jax.Array
    residual: jax.Array
    iterations: jax.Array


def make_periodic_orbit(steps_fe: Callable, steps_f: Callable, n_steps: int, free: tuple[int, ...],
                        opts, passive: tuple[int, ...] = (), chromatic: str | None = None,
                        step: float | None = None):
    """Build ``solve(table, v_fixed, dheld=None) -> PeriodicOrbit``.

    The iteration stops when the mismatch is below ``opts.tol``; a last Newton step is
    then applied to the linearised chain (``z += dz``, ``F += E dz``, no new evaluation),
    which leaves a mismatch of order ``tol^2`` and makes coordinates that feed back into
    nothing (``passive``: ``t`` with RF off) exact.

    The solution is one `jax.custom_jvp` function: tangents come from the implicit
    function theorem (a linear solve with the converged ``e``; no iteration is
    differentiated) and, for ``e`` and ``de``, from the maps' derivatives along the
    solution's tangent; derivatives of any order are exact at convergence (``de`` is the
    derivative of its difference formula).

    Args:
        steps_fe: ``(table, Z) -> (F, E)`` (outputs and Jacobians of every step).
        steps_f: ``(table, Z) -> F``.
        n_steps: number of steps.
        free: coordinates closed over the turn (4D: ``(0, 1, 2, 3)``; 6D: all; a line: none).
        opts: `ClosedOrbitOptions` (``tol``, ``max_iter``).
        passive: coordinates no step's output depends on except their own.
        chromatic: also return ``de`` along the tangent set by ``dheld`` (the derivative of
            the held coordinates of ``v_fixed``): ``"exact"`` or ``"difference"`` (see the
            module); None: no ``de``.
        step: difference step per unit tangent (default `parallel.TANGENT_STEP`).
    """
    from .parallel import TANGENT_STEP

    if chromatic not in CHROMATIC:
        raise ValueError(f"chromatic must be one of {CHROMATIC}, got {chromatic!r}")
    chain = Chain(n_steps, tuple(int(i) for i in free), tuple(passive))
    held = chain.held
    h = TANGENT_STEP if step is None else step
    offsets = jnp.asarray(TANGENT_OFFSETS * h)
    weights = jnp.asarray(TANGENT_WEIGHTS / h)
    n_fd = len(TANGENT_OFFSETS) if chromatic == "difference" else 0

    def newton(table, vfix, dheld):
        out = _newton(chain, steps_fe, opts, n_fd, offsets, weights, table, vfix, dheld)
        if chromatic != "exact":
            return out
        z, m = out[0], out[3]
        de = along_tangent(steps_fe, table, z, chain.solve_prefix(m, jnp.zeros_like(z), dheld))
        return (*out[:4], jnp.where(jnp.isfinite(de), de, 0.0), *out[5:])

    solution = jax.custom_jvp(newton)

    def solution_jvp(primals, tangents):
        table, vfix, dheld = primals
        out = solution(*primals)
        tans = _tangents(chain, steps_fe, steps_f, chromatic, offsets, weights, primals, tangents, out)
        zero = jnp.zeros(())
        return out, (*tans, zero, zero, zero)

    solution.defjvp(solution_jvp, symbolic_zeros=True)

    def solve(table, vfix, dheld=None) -> PeriodicOrbit:
        vfix = jnp.asarray(vfix, dtype=float)
        dheld = jnp.zeros(len(held)) if dheld is None else jnp.asarray(dheld, dtype=float)
        z, f, e, m, de, conv, err, it = solution(table, vfix, dheld)
        conv, err, it = lax.stop_gradient((conv, err, it))
        return PeriodicOrbit(z, f, e, m, de, conv > 0.5, err, it.astype(jnp.int32))

    solve.solve_prefix = chain.solve_prefix
    return solve


def _newton(chain: Chain, steps_fe, opts, n_fd: int, offsets, weights, table, vfix, dheld):
    """The loop: Newton evaluations (phase 0), then ``n_fd`` evaluations along the
    tangent (phases 1..n_fd), each iteration evaluating the maps once."""
    n_steps, held = chain.n_steps, chain.held
    z0 = jnp.broadcast_to(vfix, (n_steps, 6))

    def linear(z, f, e):
        return chain.linear_solve(e, chain.residuals(z, f), vfix[held] - z[0][held])

    def cond(state):
        return state[5] <= n_fd

    def step_and_tangent(z, f, e, it, phase, dzc, tc):
        """The Newton step from the last evaluation and the orbit tangent; the difference
        phases after the first reuse those of the converged orbit."""
        def fresh():
            dz, m = linear(z, f, e)
            return dz, (chain.solve_prefix(m, jnp.zeros_like(z), dheld) if n_fd else tc)

        which = jnp.where(it == 0, 0, jnp.where(phase <= 1, 1, 2))
        return lax.switch(which, [lambda: (jnp.zeros_like(z), tc), fresh, lambda: (dzc, tc)])

    def body(state):
        z, f, e, err, it, phase, de, dzc, tc = state
        dz, t = step_and_tangent(z, f, e, it, phase, dzc, tc)
        in_newton = phase == 0
        point = z + dz  # a Newton step (the first evaluation: the start guess)
        if n_fd:
            k = jnp.clip(phase - 1, 0, n_fd - 1)
            point = jnp.where(in_newton, point, point + offsets[k] * t)
        f1, e1 = steps_fe(table, point)
        err1 = chain.error(point, f1, vfix)
        z, f, e, err = (jnp.where(in_newton, a, b) for a, b in ((point, z), (f1, f), (e1, e), (err1, err)))
        it = it + in_newton.astype(it.dtype)
        if n_fd:
            de = de + jnp.where(in_newton, 0.0, weights[k]) * e1
        going = (err1 > opts.tol) & (it <= opts.max_iter) & jnp.isfinite(err1)
        phase = jnp.where(in_newton, jnp.where(going, 0, 1), phase + 1)
        return z, f, e, err, it, phase, de, dz, t

    de0 = jnp.zeros((n_steps, 6, 6)) if n_fd else jnp.zeros(())
    state = (z0, jnp.zeros_like(z0), jnp.zeros((n_steps, 6, 6)), jnp.asarray(jnp.inf), jnp.asarray(0),
             jnp.asarray(0), de0, jnp.zeros_like(z0), jnp.zeros_like(z0))
    z, f, e, err, it, _, de, _, _ = lax.while_loop(cond, body, state)
    # the last Newton step on the linearised chain: no evaluation needed
    dz, m = linear(z, f, e)
    z, f = z + dz, f + jnp.einsum("nij,nj->ni", e, dz)
    ok = jnp.isfinite(err) & jnp.all(jnp.isfinite(z)) & jnp.all(jnp.isfinite(e))
    converged = ok & (err <= opts.tol)
    z, f = (jnp.where(ok, a, b) for a, b in ((z, z0), (f, z0)))
    fine = ok & jnp.isfinite(e)
    e = jnp.where(fine, e, 0.0)
    m = jnp.where(ok & jnp.all(fine) & jnp.isfinite(m), m, 0.0)
    if n_fd:
        de = jnp.where(ok & jnp.isfinite(de), de, 0.0)
    err = jnp.where(ok, err, jnp.inf)
    return z, f, e, m, de, converged.astype(float), err, (it - 1).astype(float)


def _tangents(chain: Chain, steps_fe, steps_f, chromatic, offsets, weights, primals, tangents, out):
    """Tangents of ``(z, f, e, m, de)`` (implicit function theorem at the solution)."""
    table, vfix, dheld = primals
    dtable, dvfix, ddheld = tangents
    z, f, e, m, de = out[:5]
    held = chain.held
    dz0_held = jnp.zeros(len(held)) if isinstance(dvfix, SymbolicZero) else dvfix[held]
    if isinstance(dtable, SymbolicZero):  # e.g. d/d delta: the elements do not move
        dz = chain.solve_prefix(m, jnp.zeros_like(z), dz0_held)
        _, (df, de_t) = jax.jvp(lambda z_: steps_fe(table, z_), (z,), (dz,))
    else:
        _, rhs = jax.jvp(lambda tb: steps_f(tb, z), (table,), (dtable,))
        dz = chain.linear_solve(e, rhs, dz0_held)[0]
        (_, _), (df, de_t) = jax.jvp(steps_fe, (table, z), (dtable, dz))
    _, dm = jax.jvp(cumulative_products, (e,), (de_t,))
    ok = out[5] > 0.5
    # masked by the primal status only (linear in the tangents, so reverse mode can
    # transpose the rule)
    dz, df, de_t, dm = (jnp.where(ok, t, 0.0) for t in (dz, df, de_t, dm))
    if chromatic is None:
        return dz, df, de_t, dm, jnp.zeros(())
    ddheld = jnp.zeros_like(dheld) if isinstance(ddheld, SymbolicZero) else ddheld
    zeros = jnp.zeros_like(z)
    t, dt = jax.jvp(lambda m_, d_: chain.solve_prefix(m_, zeros, d_), (m, dheld), (dm, ddheld))
    tb_t = jnp.zeros_like(table) if isinstance(dtable, SymbolicZero) else dtable
    if chromatic == "exact":
        dde = jax.jvp(lambda tb, z_, t_: along_tangent(steps_fe, tb, z_, t_), (table, z, t), (tb_t, dz, dt))[1]
        return dz, df, de_t, dm, jnp.where(ok, dde, 0.0)

    def one(k):  # the tangent of the Jacobian at the k-th difference point
        point, dpoint = z + offsets[k] * t, dz + offsets[k] * dt
        return jax.jvp(steps_fe, (table, point), (tb_t, dpoint))[1][1]

    dde = jnp.tensordot(weights, lax.map(one, jnp.arange(len(weights))), axes=1)
    return dz, df, de_t, dm, jnp.where(ok, dde, 0.0)
