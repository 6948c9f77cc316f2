"""One driver for every solver: optimistix least-squares solvers and minimisers, optax transforms.

Matching, orbit correction and LOCO all reduce to "make this residual vector small". This
module runs that problem with the solver object the user passed in, under ``jit``, with a
tqdm progress bar fed from inside the compiled loop (the solver's ``verbose`` hook calls back
to the host once per step), and reports the outcome as a `SolveResult`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx
from jax.custom_derivatives import SymbolicZero
from tqdm.auto import tqdm


def default_solver() -> optx.AbstractLeastSquaresSolver:
    """Levenberg-Marquardt with tolerances tight enough for 1e-10 matching."""
    return optx.LevenbergMarquardt(rtol=1e-13, atol=1e-15)


def as_solver(solver) -> optx.AbstractLeastSquaresSolver | optx.AbstractMinimiser:
    """Accept an optimistix solver, an optax transform, or None (Levenberg-Marquardt).

    Raises:
        TypeError: naming what was given and what is accepted.
    """
    if solver is None:
        return default_solver()
    if isinstance(solver, (optx.AbstractLeastSquaresSolver, optx.AbstractMinimiser)):
        return solver
    if isinstance(solver, optax.GradientTransformation):
        # a first-order optimiser: stop on small changes of both the knobs and the loss
        return optx.OptaxMinimiser(solver, rtol=1e-12, atol=1e-14)
    raise TypeError(
        "solver must be an optimistix least-squares solver or minimiser (e.g. "
        "optimistix.LevenbergMarquardt(rtol, atol), optimistix.BFGS(rtol, atol)) or an optax "
        f"GradientTransformation (e.g. optax.adam(1e-2)); got {solver!r}")


@dataclasses.dataclass(frozen=True)
class SolveResult:
    """Outcome of one solve.

    Attributes:
        y: solution (the solver's variables, a NumPy array).
        success: the solver stopped on its own tolerance (not on max_steps or a failure).
        message: the solver's status in words ("" when successful).
        iterations: number of solver steps.
        loss: final 0.5 * sum(residual**2).
        residual: final residual vector.
        history: loss at each step (as reported by the solver), for plots.
        time_s: wall time of the solve [s] (compilation included on the first call).
        extra: ``(extra at the start, extra at the solution)`` when ``extra`` was given.
    """

    y: np.ndarray
    success: bool
    message: str
    iterations: int
    loss: float
    residual: np.ndarray
    history: np.ndarray
    time_s: float
    extra: Any = None


class _Progress:
    """Host side of the progress bar: a tqdm bar and the loss history."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.history: list[float] = []
        self.bar = tqdm(total=total, desc=desc, disable=not enabled, leave=False,
                        dynamic_ncols=True)

    def update(self, loss) -> None:
        loss = float(loss)
        self.history.append(loss)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.3e}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _with_progress(solver, progress: _Progress):
    """A copy of ``solver`` whose verbose hook reports each step's loss to ``progress``."""
    if not hasattr(solver, "verbose"):
        return solver

    def verbose(**kwargs):
        loss = None
        for key in ("loss_this_step", "loss"):
            if key in kwargs:
                loss = kwargs[key][1]
                break
        if loss is None:
            return
        jax.debug.callback(progress.update, loss, ordered=True)

    return eqx.tree_at(lambda s: s.verbose, solver, verbose)


def materialized_jacobian(residual: Callable, jacobian: Callable | None = None) -> Callable:
    """``residual`` with a JVP that builds the whole Jacobian once per linearisation point.

    optimistix's Gauss-Newton family linearises the residual with ``jax.linearize`` and then
    applies the linear map column by column in every damped solve; for residuals made of
    long chains of small operations (optics) that costs many Jacobians per step. With this
    wrapper the Jacobian (``jacobian(y, args)``, default ``jax.jacfwd(residual)``) is a
    primal quantity computed once, and the linear map is a matrix product. Derivatives with
    respect to ``args`` are not provided (they are data).
    """
    @jax.custom_jvp
    def wrapped(y, args):
        return residual(y, args)

    def rule(primals, tangents):
        y, args = primals
        dy, dargs = tangents
        if any(not isinstance(t, SymbolicZero) for t in
               jax.tree.leaves(dargs, is_leaf=lambda t: isinstance(t, SymbolicZero))):
            raise NotImplementedError("materialized_jacobian: no derivatives with respect to args")
        if jacobian is None:
            # value and Jacobian from one forward pass (one copy of the program, not two)
            jac_y, out = jax.jacfwd(lambda yy: (residual(yy, args),) * 2, has_aux=True)(y)
        else:
            out, jac_y = residual(y, args), jacobian(y, args)
        if isinstance(dy, SymbolicZero):
            return out, jnp.zeros_like(out)
        return out, jac_y @ dy

    wrapped.defjvp(rule, symbolic_zeros=True)
    return wrapped


def materialized_loss(residual: Callable, jacobian: Callable | None = None) -> Callable:
    """``0.5 * sum(residual**2)`` whose derivative is ``J^T r`` with a forward-mode Jacobian.

    Minimisers (BFGS, optax) take gradients by linearising and transposing the loss; with the
    Jacobian built forward (few knobs, long optics programs) the transposed map is a dot
    product, and programs whose derivative rules do not transpose still work.
    """
    @jax.custom_jvp
    def loss(y, args):
        r = residual(y, args)
        return 0.5 * jnp.sum(r**2)

    def rule(primals, tangents):
        y, args = primals
        dy, dargs = tangents
        if any(not isinstance(t, SymbolicZero) for t in
               jax.tree.leaves(dargs, is_leaf=lambda t: isinstance(t, SymbolicZero))):
            raise NotImplementedError("materialized_loss: no derivatives with respect to args")
        if jacobian is None:
            jac, r = jax.jacfwd(lambda yy: (residual(yy, args),) * 2, has_aux=True)(y)
        else:
            r, jac = residual(y, args), jacobian(y, args)
        out = 0.5 * jnp.sum(r**2)
        if isinstance(dy, SymbolicZero):
            return out, jnp.zeros_like(out)
        return out, (r @ jac) @ dy

    loss.defjvp(rule, symbolic_zeros=True)
    return loss


def solve(residual: Callable[[jax.Array, Any], jax.Array], y0, args=None, *, solver=None,
          max_steps: int = 200, progress: bool = True, desc: str = "solve",
          jitted: dict | None = None, jacobian: Callable | None = None,
          extra: Callable | None = None) -> SolveResult:
    """Minimise ``0.5 * sum(residual(y, args)**2)`` over ``y`` from ``y0``.

    Args:
        residual: pure function ``(y (n,), args) -> r (m,)``.
        y0: starting point, shape (n,).
        args: pytree of arrays passed to ``residual`` (changing them does not recompile).
        solver: see `as_solver`.
        max_steps: step limit of the solver.
        progress: show a tqdm bar with the loss.
        desc: label of the bar.
        jitted: a dict used as a cache of the compiled solve (keep it to reuse the program).
        jacobian: ``(y, args) -> (m, n)`` Jacobian of ``residual`` for least-squares solvers
            (default ``jax.jacfwd``); see `materialized_jacobian`.
        extra: ``(y, args) -> pytree`` evaluated at the start and at the solution in the same
            compiled program (e.g. the achieved target values); in ``SolveResult.extra``.
    """
    solver = as_solver(solver)
    y0 = jnp.asarray(y0, dtype=jnp.float64)
    bar = _Progress(max_steps, desc, progress)
    # The bar object is rebound each call; the compiled program calls through this cell.
    cache = {} if jitted is None else jitted
    cache["bar"] = bar
    if "fn" not in cache:
        hooked = _with_progress(solver, _Relay(cache))
        if isinstance(hooked, optx.AbstractMinimiser) and not isinstance(
                hooked, optx.AbstractLeastSquaresSolver):
            loss = materialized_loss(residual, jacobian)

            def run(y, a):
                return optx.minimise(loss, hooked, y, a, max_steps=max_steps, throw=False)
        else:
            fn_ls = materialized_jacobian(residual, jacobian)

            def run(y, a):
                return optx.least_squares(fn_ls, hooked, y, a, max_steps=max_steps, throw=False)

        def fn(y, a):
            sol = run(y, a)
            r = residual(sol.value, a)
            ok = sol.result == optx.RESULTS.successful
            # both evaluations of extra in one vmapped copy
            ex = None if extra is None else jax.vmap(lambda yy: extra(yy, a))(jnp.stack([y, sol.value]))
            ex = None if ex is None else (jax.tree.map(lambda e: e[0], ex), jax.tree.map(lambda e: e[1], ex))
            return sol.value, r, ok, sol.stats["num_steps"], sol.result._value, ex
        cache["fn"] = jax.jit(fn)
    t0 = time.perf_counter()
    try:
        y, r, ok, n, code, ex = jax.block_until_ready(cache["fn"](y0, args))
    finally:
        bar.close()
    dt = time.perf_counter() - t0
    r = np.asarray(r)
    message = "" if bool(ok) else optx.RESULTS._index_to_message[int(code)]
    ex = None if ex is None else jax.tree.map(np.asarray, ex)
    return SolveResult(np.asarray(y), bool(ok), message, int(n), float(0.5 * np.sum(r**2)), r,
                       np.asarray(bar.history), dt, ex)


class _Relay:
    """Forwards the compiled program's callbacks to the current call's progress bar."""

    def __init__(self, cache: dict):
        self.cache = cache

    def update(self, loss) -> None:
        self.cache["bar"].update(loss)
