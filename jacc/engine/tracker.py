"""The tracking loops: ``lax.scan`` over elements (switching on the kernel) and over turns.

Particles travel as six arrays of shape (n,) (fast under XLA); the public functions take
and return ``(n, 6)`` arrays. Lost particles keep the coordinates they had where they were
lost; a particle whose coordinates stop being finite is flagged lost and restored to the
start of that turn, so nothing non-finite reaches the batch or its gradients.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .compiler import LineSpec
from .kernels import make_batch, make_single
from .one_kernel import one_kernel


def table_from_dynamic(spec: LineSpec, dynamic: dict):
    """Parameter table with the dynamic parameters (flagged fields, knobs) written in."""
    missing = [k for k in spec.dynamic_init if k not in dynamic]
    if missing:
        raise KeyError(f"dynamic parameters missing: {missing}; expected {sorted(spec.dynamic_init)}")
    table = jnp.asarray(spec.table)
    for s in spec.setters:
        v = setter_value(s, dynamic, len(s.rows), table.dtype)
        table = table.at[np.asarray(s.rows), s.col:s.col + s.size].set(v)
    return table


def setter_value(setter, dynamic: dict, n_rows: int, dtype):
    """The ``(n_rows, setter.size)`` block a `Setter` writes: a dynamic value or its knob expression."""
    if setter.key is not None:
        v = dynamic[setter.key]
    else:
        vals = dict(setter.consts)
        vals.update({k: dynamic[k] for k in setter.expr.names if k in dynamic})
        v = setter.expr.evaluate(vals, jnp)
    return jnp.broadcast_to(jnp.reshape(jnp.asarray(v, dtype=dtype), (-1,)), (n_rows, setter.size))


class MonitorData(eqx.Module):
    """Turn-by-turn monitor (BPM) data.

    Attributes:
        names: monitor placement keys (``name:n``), static.
        s: monitor positions [m].
        centroid: (n_turns, n_monitors, 6) centroid of the alive particles at each monitor.
        coordinates: (n_turns, n_monitors, n, 6) full coordinates, when requested, else None.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    s: jax.Array
    centroid: jax.Array | None
    coordinates: jax.Array | None = None


class TrackResult(eqx.Module):
    """Result of tracking.

    Attributes:
        x: (n, 6) final coordinates (lost particles: where they were lost).
        alive: (n,) bool.
        lost_turn: (n,) turn at which each particle was lost (-1: alive).
        lost_element: (n,) placement index where it was lost (-1: alive).
        monitors: `MonitorData` or None.
    """

    x: jax.Array
    alive: jax.Array
    lost_turn: jax.Array
    lost_element: jax.Array
    monitors: MonitorData | None = None


def switch_recomputing(branches, with_flag: bool, param_grads=None):
    """``apply(k, prow, X)``: ``lax.switch(k, branches, prow, X)`` whose derivatives keep
    only the step's inputs and recompute the chosen branch.

    Reverse mode through a plain ``lax.switch`` stores the union of every branch's
    intermediates (zero-filled for the branches not taken) at every step. Here the
    derivative is a custom JVP: one switch over the branches' own JVPs, each under
    ``jax.checkpoint``, so that linearising it saves ``(prow, X)`` alone (the same for every
    branch) and the transposed step recomputes and pulls back the element actually there.
    Forward mode (``jax.jacfwd``) works as usual.

    ``with_flag``: each branch returns ``(X, flag)`` with a boolean ``flag`` (no tangent).
    ``param_grads``: per branch, whether its parameter row can carry a tangent (None:
    all). A branch without one differentiates the coordinates alone (its parameters are
    constants), which spares a sum over the particles per parameter and per sub-step.
    """
    if len(branches) == 1 and param_grads is None:
        return lambda k, prow, X: branches[0](prow, X)

    def coords(b):
        return (lambda prow, X: b(prow, X)[0]) if with_flag else b

    def tangent(b, wants_params):
        @jax.checkpoint
        def t(prow, X, dprow, dX):
            if wants_params:
                return jax.jvp(coords(b), (prow, X), (dprow, dX))[1]
            return jax.jvp(lambda X_: coords(b)(prow, X_), (X,), (dX,))[1]
        return t

    wants = [True] * len(branches) if param_grads is None else [bool(w) for w in param_grads]
    tangents = [tangent(b, w) for b, w in zip(branches, wants)]

    def switch(k, fns, *args):
        return fns[0](*args) if len(fns) == 1 else lax.switch(k, fns, *args)

    @jax.custom_jvp
    def apply(k, prow, X):
        return switch(k, branches, prow, X)

    @apply.defjvp
    def apply_jvp(primals, tangents_in):
        k, prow, X = primals
        _, dprow, dX = tangents_in
        out = apply(k, prow, X)
        dcoords = switch(k, tangents, prow, X, dprow, dX)
        if with_flag:
            return out, (dcoords, np.zeros(np.shape(out[1]), dtype=jax.dtypes.float0))
        return out, dcoords

    return apply


def _monitor_steps(spec: LineSpec, at: np.ndarray):
    """Observation slots: each monitor sees the state after `placement_step[i]` steps."""
    after = spec.placement_step[at]  # steps done at the monitor's exit
    uniq = np.unique(after)
    slot_of_step = np.full(spec.n_steps + 1, len(uniq), dtype=np.int32)  # index: steps done
    slot_of_step[uniq] = np.arange(len(uniq), dtype=np.int32)
    gather = np.searchsorted(uniq, after)
    return uniq, slot_of_step, gather


def differentiable_kernels(spec: LineSpec) -> list[bool]:
    """Per kernel, whether a dynamic parameter (a setter) writes into one of its rows."""
    kidx = np.asarray(spec.kernel_index)
    hit = {int(kidx[r]) for s in spec.setters for r in s.rows}
    return [k in hit for k in range(len(spec.kernels))]


# Particles per block: each block is tracked through all its turns on its own, so that the
# arrays of an element step stay in the core's cache (1.2-1.4x faster than one block of 1e4
# or 1e5 particles on the 2-core development machine; blocks of 1e3 to 4e3 are about equal).
CHUNK = 2048


def make_turn_tracker(spec: LineSpec, *, record: str | None = "centroid",
                      monitor_at: np.ndarray | None = None, checkpoint: bool = True,
                      param_grads=None, chunk: int | None = CHUNK):
    """Build ``run(table, x0 (n, 6), alive0 (n,), n_turns) -> TrackResult`` for ``spec``.

    ``record``: None, ``"centroid"`` or ``"coordinates"`` at the placements ``monitor_at``
    (default: the lattice's monitors). ``param_grads``: per kernel, whether reverse mode
    needs the cotangent of its parameters (`differentiable_kernels` when the table comes
    from `table_from_dynamic`; None: every kernel, for tables differentiated directly).
    ``chunk``: particles are tracked in blocks of this many (None: all at once).
    """
    batches = [make_batch(k, spec.ref) for k in spec.kernels]
    has_aperture = any(k.aperture is not None for k in spec.kernels)
    at = spec.monitors if monitor_at is None else np.asarray(monitor_at, dtype=np.int64)
    record = record if len(at) else None
    uniq, slot_of_step, gather = _monitor_steps(spec, at)
    n_slots = len(uniq)
    kidx = jnp.asarray(spec.kernel_index)
    slots_after = jnp.asarray(slot_of_step[1:])  # slot for the state after step j
    step_pl = jnp.asarray(spec.step_placement, dtype=jnp.int32)
    apply = switch_recomputing(batches, with_flag=True, param_grads=param_grads)

    def observe(X, alive):
        if record == "centroid":
            # sums over the alive particles and their number: blocks add up
            w = alive.astype(X[0].dtype)
            return jnp.stack([jnp.sum(jnp.where(alive, c, 0.0)) for c in X] + [jnp.sum(w)])
        return jnp.stack(X, axis=-1)

    def element_step(carry, inp):
        X, alive, lost_el, buf = carry
        k, prow, slot, pl = inp
        Xn, inside = apply(k, prow, X)
        if has_aperture:
            newly = alive & ~inside
            lost_el = jnp.where(newly, pl, lost_el)
            alive = alive & inside
            Xn = tuple(jnp.where(alive, a, b) for a, b in zip(Xn, X))
        if record is not None:
            buf = lax.cond(slot < n_slots,
                           lambda b: lax.dynamic_update_index_in_dim(b, observe(Xn, alive), slot, 0),
                           lambda b: b, buf)
        return (Xn, alive, lost_el, buf), None

    def one_turn(table, carry, turn):
        X, alive, lost_el, lost_turn = carry
        n = X[0].shape[0]
        if record == "centroid":
            buf = jnp.zeros((n_slots + 1, 7), X[0].dtype)
        elif record == "coordinates":
            buf = jnp.zeros((n_slots + 1, n, 6), X[0].dtype)
        else:
            buf = jnp.zeros((1,), X[0].dtype)
        if record is not None and slot_of_step[0] < n_slots:
            buf = lax.dynamic_update_index_in_dim(buf, observe(X, alive), int(slot_of_step[0]), 0)
        (Xn, alive_n, lost_el, buf), _ = lax.scan(
            element_step, (X, alive, lost_el, buf),
            (kidx, table, slots_after, step_pl))
        finite = jnp.all(jnp.stack([jnp.isfinite(c) for c in Xn]), axis=0)
        bad = alive_n & ~finite
        Xn = tuple(jnp.where(bad, b, a) for a, b in zip(Xn, X))
        lost_el = jnp.where(bad, -2, lost_el)
        alive_n = alive_n & finite
        lost_turn = jnp.where(alive & ~alive_n, turn, lost_turn)
        out = buf[np.asarray(gather)] if record is not None else None
        return (Xn, alive_n, lost_el, lost_turn), out

    body = jax.checkpoint(one_turn) if checkpoint else one_turn

    def run_block(table, x0, alive0, n_turns: int):
        X = tuple(x0[:, i] for i in range(6))
        n = x0.shape[0]
        init = (X, alive0, jnp.full(n, -1, jnp.int32), jnp.full(n, -1, jnp.int32))
        (X, alive, lost_el, lost_turn), obs = lax.scan(
            lambda c, t: body(table, c, t), init, jnp.arange(n_turns, dtype=jnp.int32))
        return jnp.stack(X, axis=1), alive, lost_turn, lost_el, obs

    # the whole block (all its turns) compiles into one kernel: no per-step dispatch
    run_block_k = one_kernel(run_block, static_argnums=(3,))

    def run(table, x0, alive0, n_turns: int):
        n = x0.shape[0]
        if chunk is None or n <= chunk:
            x, alive, lost_turn, lost_el, obs = run_block_k(table, x0, alive0, n_turns)
        else:
            x, alive, lost_turn, lost_el, obs = _in_blocks(
                lambda x0, a0: run_block_k(table, x0, a0, n_turns), x0, alive0, chunk, record)
        mon = None
        if record is not None:
            names = tuple(f"{spec.names[i]}:{_occ(spec.names, i)}" for i in at)
            s = jnp.asarray(spec.s_end[at])
            if record == "centroid":
                obs = obs[..., :6] / jnp.maximum(obs[..., 6:], 1.0)
            mon = MonitorData(names, s, obs if record == "centroid" else None,
                              obs if record == "coordinates" else None)
        return TrackResult(x, alive, lost_turn, lost_el, mon)

    return run


def _in_blocks(track_block, x0, alive0, chunk: int, record):
    """``track_block`` over blocks of ``chunk`` particles (the last one padded), joined.

    Padding particles sit at the origin, flagged lost (they count in no centroid).
    """
    n = x0.shape[0]
    nb = -(-n // chunk)
    pad = nb * chunk - n
    xb = jnp.concatenate([x0, jnp.zeros((pad, 6), x0.dtype)]).reshape(nb, chunk, 6)
    ab = jnp.concatenate([alive0, jnp.zeros(pad, bool)]).reshape(nb, chunk)
    x, alive, lost_turn, lost_el, obs = lax.map(lambda a: track_block(*a), (xb, ab))

    def join(a):
        return a.reshape((nb * chunk,) + a.shape[2:])[:n]

    if record == "centroid":
        obs = jnp.sum(obs, axis=0)
    elif record == "coordinates":  # (blocks, turns, monitors, chunk, 6)
        obs = jnp.moveaxis(obs, 0, 2)
        obs = obs.reshape(obs.shape[:2] + (nb * chunk, 6))[:, :, :n]
    return join(x), join(alive), join(lost_turn), join(lost_el), obs


def _occ(names, i) -> int:
    return sum(1 for n in names[: i + 1] if n == names[i])


def make_line_states(spec: LineSpec):
    """``f(table, v (6,)) -> (v_out (6,), states (n_steps, 6))`` for one particle, one pass.

    ``states[j]`` is the particle after scan step j; for placement i use
    ``states[spec.placement_step[i] - 1]`` (or the input when no step was done yet).
    """
    singles = [make_single(k, spec.ref) for k in spec.kernels]
    kidx = jnp.asarray(spec.kernel_index)

    def step(v, inp):
        k, prow = inp
        if len(singles) == 1:
            out, _ = singles[0](prow, v)
        else:
            out, _ = lax.switch(k, singles, prow, v)
        return out, out

    def f(table, v):
        return lax.scan(step, v, (kidx, table))

    return f


def make_reversible_turns(spec: LineSpec, param_grads=None):
    """``run(table, x0 (n, 6), n_turns) -> x (n, 6)`` whose reverse mode tracks backwards.

    Reverse mode needs, at each element, the state entering it and the transposed Jacobian
    ``M^T`` applied to the cotangent. Both come from the element's inverse map ``g``
    (`Method.inverse`), evaluated at the state leaving it: ``g`` recovers the entering state,
    and because the maps are symplectic (``M^T J M = J``), ``M^T = J M^-1 J^-1`` with
    ``M^-1 = Dg``, so the cotangent is pulled back by one forward-mode derivative of ``g``:
    ``lam_in = J Dg (-J lam_out)``. The parameters' cotangents follow from the same
    derivative (``df/dp = -M dg/dp``): ``-lam_in . dg/dp``, one more tangent per flagged
    column. Nothing is stored but the final state: memory does not depend on the number of
    turns or elements, and the backward pass costs one forward-mode evaluation of each
    inverse map (about twice a forward pass).

    Losses and monitors are not handled on this path (use `make_turn_tracker` for them);
    states are recovered to rounding as long as the motion is stable (inverse tracking of
    chaotic orbits amplifies rounding like forward tracking does).

    ``param_grads``: per kernel, whether its parameters need cotangents (None: all).
    """
    from .kernels import as_batch, invertible, make_single_inverse

    bad = [k.kind for k in spec.kernels if not invertible(k)]
    if bad:
        raise NotImplementedError(f"reversible tracking: no inverse for the models of {sorted(set(bad))}")
    kidx = jnp.asarray(spec.kernel_index)
    width = spec.table.shape[1]
    wants = [True] * len(spec.kernels) if param_grads is None else [bool(w) for w in param_grads]
    cols = _tangent_columns(spec)
    fwd = [as_batch(lambda prow, v, f=make_single(k, spec.ref): f(prow, v)[0]) for k in spec.kernels]
    adjoints = [_adjoint_step(make_single_inverse(k, spec.ref), cols[i] if wants[i] else (), width)
                for i, k in enumerate(spec.kernels)]

    def sweep(table, X):
        def step(X, inp):
            k, prow = inp
            return (fwd[0](prow, X) if len(fwd) == 1 else lax.switch(k, fwd, prow, X)), None

        return lax.scan(step, X, (kidx, table))[0]

    def sweep_back(table, X, lam):
        def step(carry, inp):
            X, lam = carry
            k, prow = inp
            if len(adjoints) == 1:
                X, lam, g = adjoints[0](prow, X, lam)
            else:
                X, lam, g = lax.switch(k, adjoints, prow, X, lam)
            return (X, lam), g

        (X, lam), g = lax.scan(step, (X, lam), (kidx, table), reverse=True)
        return X, lam, g

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
    def turns(table, X, n_turns):
        return lax.scan(lambda X, _: (sweep(table, X), None), X, None, length=n_turns)[0]

    def turns_fwd(table, X, n_turns):
        Y = turns(table, X, n_turns)
        return Y, (table, Y)

    def turns_bwd(n_turns, res, ct):
        table, Y = res

        def back(carry, _):
            X, lam, g_table = carry
            X, lam, g = sweep_back(table, X, lam)
            return (X, lam, g_table + g), None

        lam = tuple(jnp.asarray(c) for c in ct)
        (_, lam0, g_table), _ = lax.scan(back, (Y, lam, jnp.zeros_like(table)), None, length=n_turns)
        return g_table, lam0

    turns.defvjp(turns_fwd, turns_bwd)

    def run(table, x0, n_turns: int):
        X = turns(table, tuple(x0[:, i] for i in range(6)), int(n_turns))
        return jnp.stack(X, axis=1)

    return run


def _tangent_columns(spec: LineSpec) -> list[tuple[int, ...]]:
    """Per kernel, the table columns that dynamic parameters write (their cotangents matter)."""
    kidx = np.asarray(spec.kernel_index)
    cols: list[set[int]] = [set() for _ in spec.kernels]
    for s in spec.setters:
        for r in s.rows:
            cols[int(kidx[r])].update(range(s.col, s.col + s.size))
    return [tuple(sorted(c)) for c in cols]


def _adjoint_step(inverse, cols: tuple[int, ...], width: int):
    """``f(prow, X_out, lam_out) -> (X_in, lam_in, g_prow)`` for one element (see
    `make_reversible_turns`): its inverse map and one forward-mode derivative of it."""
    cols_arr = np.asarray(cols, dtype=np.int64)

    def one(prow, *v_lam):
        v_out, lam_out = jnp.stack(v_lam[:6]), v_lam[6:]

        def g(v, pc):
            return inverse(prow.at[cols_arr].set(pc) if len(cols) else prow, v)

        pc0 = prow[cols_arr] if len(cols) else jnp.zeros(0, prow.dtype)
        # u = -J lam_out and lam_in = J w, with J the symplectic form of (x, px, y, py, t, pt)
        u = jnp.stack([-lam_out[1], lam_out[0], -lam_out[3], lam_out[2], -lam_out[5], lam_out[4]])
        # derivatives in the cotangent's direction and one per flagged column: jax.jvp for
        # the first alone (jax.linearize would re-run the checkpointed loops of the bends to
        # build its linear function), jax.linearize to share the primal among several
        zero_p = jnp.zeros_like(pc0)
        if not len(cols):
            v_in, w = jax.jvp(g, (v_out, pc0), (u, zero_p))
            dgs = []
        else:
            v_in, lin = jax.linearize(g, v_out, pc0)
            w = lin(u, zero_p)
            dgs = [lin(jnp.zeros(6, prow.dtype), zero_p.at[i].set(1.0)) for i in range(len(cols))]
        lam_in = (w[1], -w[0], w[3], -w[2], w[5], -w[4])
        g_cols = [-sum(d[j] * lam_in[j] for j in range(6)) for d in dgs]
        return tuple(v_in[i] for i in range(6)), lam_in, g_cols

    vm = jax.vmap(one, in_axes=(None,) + (0,) * 12)

    def step(prow, X, lam):
        X_in, lam_in, g_cols = vm(prow, *X, *lam)
        g_row = jnp.zeros(width, prow.dtype)
        if len(cols):
            g_row = g_row.at[cols_arr].set(jnp.stack([jnp.sum(g) for g in g_cols]))
        return X_in, lam_in, g_row

    return step
