"""The optics table returned by `jacc.twiss`: `jacc.Twiss` plus the columns this layer adds.

`TwissTable` is a `jacc.Twiss` (same columns, names and units; a pytree), with optional
columns for coupled, chromatic and 6D optics and a static description of the magnet
layout for `plot()`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jacc.containers import Twiss


def _optional():
    return eqx.field(default=None, converter=lambda v: None if v is None else jnp.asarray(v, dtype=float))


EXTRA_COLUMNS = ("alfx1", "alfy1", "alfx2", "alfy2", "wx", "wy", "dmux", "dmuy",
                 "ddx", "ddpx", "ddy", "ddpy", "t", "pt")
EXTRA_SUMMARY = ("qs", "c_minus")


class TwissTable(Twiss):
    """Optics along a line: the `jacc.Twiss` columns and summary, plus

    Attributes:
        alfx1, alfy1, alfx2, alfy2: mode alpha functions [1] (xtrack's definitions;
            ``alfx1 = alfx``, ``alfy2 = alfy``).
        wx, wy: Montague chromatic functions [1]: ``W = sqrt(A^2 + B^2)`` with
            ``B = (d beta / d delta) / beta`` and ``A = d alpha / d delta - alpha B``.
        dmux, dmuy: chromatic phase advance ``d mu / d delta`` [2 pi].
        ddx, ddpx, ddy, ddpy: second-order dispersion ``d^2 x / d delta^2`` [m] (xtrack's
            convention: ``x = x0 + dx delta + ddx delta^2 / 2``).
        t, pt: longitudinal closed orbit (6D) or reference trajectory [m], [1].
        qs: synchrotron tune (6D) [1]. c_minus: closest tune approach ``|C-|`` [1], as
            xtrack computes it (s-average of the local coupling estimate).
        layout: static ``(kind, s_start, s_end, sign)`` per drawn magnet (`plot`); sign is
            that of a quadrupole's ``k1`` (0 for other magnets).
    """

    alfx1: Float[Array, " N"] | None = _optional()
    alfy1: Float[Array, " N"] | None = _optional()
    alfx2: Float[Array, " N"] | None = _optional()
    alfy2: Float[Array, " N"] | None = _optional()
    wx: Float[Array, " N"] | None = _optional()
    wy: Float[Array, " N"] | None = _optional()
    dmux: Float[Array, " N"] | None = _optional()
    dmuy: Float[Array, " N"] | None = _optional()
    ddx: Float[Array, " N"] | None = _optional()
    ddpx: Float[Array, " N"] | None = _optional()
    ddy: Float[Array, " N"] | None = _optional()
    ddpy: Float[Array, " N"] | None = _optional()
    t: Float[Array, " N"] | None = _optional()
    pt: Float[Array, " N"] | None = _optional()
    qs: Float[Array, ""] | None = _optional()
    c_minus: Float[Array, ""] | None = _optional()
    layout: tuple | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        n = len(self.name)
        for col in EXTRA_COLUMNS:
            v = getattr(self, col)
            if v is not None and v.shape != (n,):
                raise ValueError(f"TwissTable: column {col!r} must have shape ({n},), got {v.shape}")
        for key in EXTRA_SUMMARY:
            v = getattr(self, key)
            if v is not None and v.shape != ():
                raise ValueError(f"TwissTable: {key!r} must be a scalar, got shape {v.shape}")

    def __getitem__(self, column: str):
        if column in EXTRA_COLUMNS + EXTRA_SUMMARY:
            return getattr(self, column)
        return super().__getitem__(column)

    def columns(self) -> tuple[str, ...]:
        """Names of the columns present (optional ones only when set)."""
        return super().columns() + tuple(c for c in EXTRA_COLUMNS if getattr(self, c) is not None)

    def __repr__(self) -> str:
        head = ", ".join(f"{k}={v:.6g}" for k, v in self.summary().items())
        return (f"TwissTable({len(self)} rows from '{self.name[0]}' to '{self.name[-1]}'"
                + (f", {head}" if head else "") + ")")

    def summary(self) -> dict:
        """The scalar results present, as floats (``qx``, ``qy``, ``dqx``... ``qs``, ``c_minus``)."""
        keys = ("qx", "qy", "dqx", "dqy", "momentum_compaction") + EXTRA_SUMMARY
        return {k: float(getattr(self, k)) for k in keys if getattr(self, k) is not None}


class TwissStatus(eqx.Module):
    """Status of an optics computation (returned beside the table, usable under jit).

    Attributes:
        converged: the closed orbit was found (always True for a line).
        residual: ``max |F(u) - u|`` of the closed orbit [m, rad].
        stable: the one-turn map is stable and its modes could be separated (always True
            for a line).
    """

    converged: jax.Array
    residual: jax.Array
    stable: jax.Array

    @property
    def ok(self):
        return self.converged & self.stable
