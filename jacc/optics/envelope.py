"""Linear envelope propagation ``S_i = M_i S_0 M_i^T`` along a line, and beam sizes.

The centroid is tracked through the full (nonlinear) maps; the covariance is carried by
the transfer matrices about it, ``M_i`` from one ``jax.jacfwd`` of the line function, so
the result is exact for a linear line and first order about the centroid otherwise.
No space charge here (see `jacc.spacecharge` for KV envelopes).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jacc.containers import Envelope
from jacc.engine import TrackingEngine
from jacc.engine.compiler import LineSpec
from jacc.engine.tracker import make_line_states, table_from_dynamic

from .lattice_functions import safe_sqrt

_CACHE: dict = {}


class EnvelopeTable(eqx.Module):
    """Second moments along a line: rows are the start, then each placement's exit.

    Attributes:
        name: row names (static).
        s: path length [m], (N,).
        sigma: (N, 6, 6) covariance of ``(x, px, y, py, t, pt)``.
        mean: (N, 6) centroid.
    """

    name: tuple = eqx.field(static=True)
    s: Float[Array, " N"]
    sigma: Float[Array, "N 6 6"]
    mean: Float[Array, "N 6"]

    def __len__(self) -> int:
        return len(self.name)

    def beam_sizes(self) -> Float[Array, "N 6"]:
        """rms of each coordinate at each row (``sigma_x`` [m] in column 0, ...)."""
        return safe_sqrt(jnp.diagonal(self.sigma, axis1=1, axis2=2))

    def envelope(self, row: int) -> Envelope:
        """The `jacc.Envelope` at one row."""
        return Envelope(sigma=self.sigma[row], mean=self.mean[row])


def make_envelope_func(spec: LineSpec, name: str = "line"):
    """Pure ``h(table, sigma0 (6, 6), mean0 (6,)) -> EnvelopeTable`` for a compiled line."""
    line_states = make_line_states(spec)
    rows_idx = np.concatenate([[0], np.asarray(spec.placement_step, dtype=np.int64)])
    names = (f"{name}$start",) + tuple(spec.names)
    s = jnp.asarray(np.concatenate([[spec.s0], np.asarray(spec.s_end)]))

    def h(table, sigma0, mean0):
        def f(v):
            st = line_states(table, v)[1]
            return st, st

        jac, st = jax.jacfwd(f, has_aux=True)(mean0)
        m = jnp.concatenate([jnp.eye(6)[None], jac])[rows_idx]
        mean = jnp.concatenate([mean0[None], st])[rows_idx]
        sigma = m @ sigma0 @ jnp.swapaxes(m, 1, 2)
        return EnvelopeTable(names, s, sigma, mean)

    return h


def propagate_envelope(lat, rp, envelope: Envelope, *, model=None) -> EnvelopeTable:
    """Propagate ``envelope`` (a `jacc.Envelope` at the start) through ``lat``.

    Compiled once per lattice structure, like `jacc.twiss`. For a gradient, build
    ``make_envelope_func(engine.spec)`` and call it with ``table_from_dynamic``.
    """
    if not isinstance(envelope, Envelope):
        raise TypeError(f"propagate_envelope: envelope must be a jacc.Envelope, got {type(envelope).__name__}")
    engine = TrackingEngine(lat, rp, model, specialise=False)
    spec = engine.spec
    key = (spec.signature, spec.ref, type(engine.model), repr(engine.model.models), lat.name)
    fn = _CACHE.get(key)
    if fn is None:
        fn = jax.jit(make_envelope_func(spec, lat.name))
        _CACHE[key] = fn
    table = table_from_dynamic(spec, {k: jnp.asarray(v) for k, v in spec.dynamic_init.items()})
    return fn(table, envelope.sigma, envelope.mean)


def beam_sizes(tw, emitx, emity, sigma_delta=0.0):
    """rms beam sizes ``(sigma_x, sigma_y)`` [m] along a Twiss table from emittances.

    ``sigma_x^2 = emitx betx1 + emity betx2 + (dx sigma_delta)^2`` and likewise in y with
    ``bety1, bety2, dy`` (mode betas: exact for coupled optics; ``betx2 = bety1 = 0``
    without coupling).

    Args:
        tw: a Twiss table. emitx, emity: rms geometric emittances of the modes [m].
        sigma_delta: rms momentum spread [1].
    """
    bx1 = tw.betx if tw.betx1 is None else tw.betx1
    by2 = tw.bety if tw.bety2 is None else tw.bety2
    bx2 = 0.0 if tw.betx2 is None else tw.betx2
    by1 = 0.0 if tw.bety1 is None else tw.bety1
    sx2 = emitx * bx1 + emity * bx2 + (tw.dx * sigma_delta) ** 2
    sy2 = emitx * by1 + emity * by2 + (tw.dy * sigma_delta) ** 2
    return safe_sqrt(sx2), safe_sqrt(sy2)
