"""Orbit, transfer matrices and their momentum derivatives from one instance of the maps.

Chromatic optics need, at every step, the orbit ``z``, the step's Jacobian ``E`` and the
derivatives of both along the orbit's momentum derivative ``dz`` (the dispersion):
second derivatives of every element map. `make_orbit_jets` finds all of them in one
Newton iteration whose every evaluation is the same "jet" of the maps,
``(F, E, dF, dE) = jet(table, z, dz)`` (`parallel.make_steps` with ``jets=True``): the
compiled program holds each element kernel once, which sets its compile time. Each
iteration corrects ``z`` by a Newton step on the linearised chain (`chain.Chain`) and
takes ``dz`` from the same linear system with the Jacobians just evaluated, so that at
convergence the jets are those of the orbit along its own momentum derivative.

The result is one `jax.custom_jvp` function: derivatives with respect to the parameter
table and the held coordinates come from the implicit function theorem at convergence
(linear solves with the converged ``E``, one linearisation of the jet), never from
differentiating the iterations.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from .chain import Chain
from .parallel import cumulative_products


class OrbitJets(NamedTuple):
    """Orbit and transfer matrices of every step, with their derivatives along ``w``.

    Attributes:
        z, f: (n_steps, 6) orbit at the entrance and at the exit of each step.
        e: (n_steps, 6, 6) each step's Jacobian at ``z``; m: their products from the start.
        dz, df, de, dm: derivatives of the four along the held direction ``w`` (for optics,
            ``d/d delta``: ``dz`` is the dispersion vector at each step's entrance).
        converged, residual, iterations: status of the Newton iteration.
    """

    z: jax.Array
    f: jax.Array
    e: jax.Array
    m: jax.Array
    dz: jax.Array
    df: jax.Array
    de: jax.Array
    dm: jax.Array
    converged: jax.Array
    residual: jax.Array
    iterations: jax.Array


def make_orbit_jets(jet: Callable, chain: Chain, opts) -> Callable:
    """Build ``solve(table, vfix, wfix) -> OrbitJets``.

    Args:
        jet: ``(table, Z, dZ) -> (F, E, dF, dE)`` of every step.
        chain: the chain's index sets (a ring closes its ``free`` coordinates; a line
            holds all six at its start).
        opts: `ClosedOrbitOptions` (``tol``, ``max_iter``).

    ``vfix`` gives the held coordinates of the orbit at the start (and the start guess of
    the others), ``wfix`` the held coordinates of its derivative (4D optics:
    ``(0, 0, 0, 0, 0, dpt/ddelta)``; a line: the initial dispersion).

    The iteration stops when the chain's mismatch is below ``opts.tol`` and the Newton
    correction before the last evaluation was too: ``dz`` is solved with the Jacobians of
    the evaluation before the last, so they must have been taken on the orbit (an ideal
    ring whose start guess is its orbit: two evaluations; a closed-orbit distortion: one
    more per Newton step). IOTA's 5.6e-10 m first correction moved its dispersion by 3e-8
    relative: hence the second condition.
    """
    held, n = chain.held, chain.n_steps

    def newton(table, vfix, wfix):
        z0 = jnp.broadcast_to(vfix, (n, 6))
        eye = jnp.broadcast_to(jnp.eye(6, dtype=z0.dtype), (n, 6, 6))

        def cond(state):
            err, moved, it = state[6], state[7], state[8]
            # go on until the orbit is closed and the Jacobians that gave dz were evaluated
            # on it (the last correction below tol)
            more = (err > opts.tol) | (moved > opts.tol)
            return (it == 0) | (more & (it <= opts.max_iter) & jnp.isfinite(err))

        def correct(z, f, e):
            step, m = chain.linear_solve(e, chain.residuals(z, f), vfix[held] - z[0][held])
            moved = jnp.max(jnp.abs(step[:, chain.active]))
            return z + step, chain.solve_prefix(m, jnp.zeros_like(z), wfix[held]), moved

        def body(state):
            z, dz, f, e, _, _, _, moved, it = state
            z, dz, moved = lax.cond(it > 0, lambda: correct(z, f, e), lambda: (z, dz, moved))
            f, e, df, de = jet(table, z, dz)
            return z, dz, f, e, df, de, chain.error(z, f, vfix), moved, it + 1

        zeros = jnp.zeros_like(z0)
        inf = jnp.asarray(jnp.inf, z0.dtype)
        state = (z0, zeros, zeros, eye, zeros, jnp.zeros_like(eye), inf, inf, jnp.asarray(0))
        z, dz, f, e, df, de, err, _, it = lax.while_loop(cond, body, state)
        # the last Newton step on the linearised chain: no evaluation needed
        step, m = chain.linear_solve(e, chain.residuals(z, f), vfix[held] - z[0][held])
        z, f = z + step, f + jnp.einsum("nij,nj->ni", e, step)
        dm = jax.jvp(cumulative_products, (e,), (de,))[1]
        arrays = (z, f, e, m, dz, df, de, dm)
        ok = jnp.isfinite(err)
        for a in arrays:
            ok = ok & jnp.all(jnp.isfinite(a))
        fallback = (z0, z0, eye, eye) + (jnp.zeros_like(z0),) * 2 + (jnp.zeros_like(eye),) * 2
        arrays = tuple(jnp.where(ok, a, b) for a, b in zip(arrays, fallback))
        converged = ok & (err <= opts.tol)
        return arrays + (converged.astype(z0.dtype), jnp.where(ok, err, jnp.inf), (it - 1).astype(z0.dtype))

    solution = jax.custom_jvp(newton)

    def solution_jvp(primals, tangents):
        table, vfix, wfix = primals
        dtable, dvfix, dwfix = tangents
        out = solution(table, vfix, wfix)
        z, _, e, _, dz = out[:5]
        dtable = jnp.zeros_like(table) if isinstance(dtable, SymbolicZero) else dtable
        held_t = [jnp.zeros(len(held), z.dtype) if isinstance(t, SymbolicZero) else t[held]
                  for t in (dvfix, dwfix)]
        _, lin = jax.linearize(jet, table, z, dz)
        zero = jnp.zeros_like(z)
        # the orbit's tangent: the chain linearised in the parameters
        zt = chain.linear_solve(e, lin(dtable, zero, zero)[0], held_t[0])[0]
        ft, et, _, _ = lin(dtable, zt, zero)
        # dz solves dz[j+1] = e[j] dz[j]: its tangent sees the Jacobians' change
        dzt = chain.linear_solve(e, jnp.einsum("nij,nj->ni", et, dz), held_t[1])[0]
        _, _, dft, det = lin(dtable, zt, dzt)
        _, (mt, dmt) = jax.jvp(lambda e_, de_: jax.jvp(cumulative_products, (e_,), (de_,)),
                               (e, out[6]), (et, det))
        ok = out[8] > 0.5
        # masked by the primal status only (linear in the tangents: reverse mode transposes it)
        ts = tuple(jnp.where(ok, t, 0.0) for t in (zt, ft, et, mt, dzt, dft, det, dmt))
        scalar = jnp.zeros((), z.dtype)
        return out, ts + (scalar, scalar, scalar)

    solution.defjvp(solution_jvp, symbolic_zeros=True)

    def solve(table, vfix, wfix) -> OrbitJets:
        vfix, wfix = jnp.asarray(vfix, dtype=float), jnp.asarray(wfix, dtype=float)
        out = solution(table, vfix, wfix)
        conv, err, it = lax.stop_gradient(out[8:])
        return OrbitJets(*out[:8], conv > 0.5, err, it.astype(jnp.int32))

    return solve
