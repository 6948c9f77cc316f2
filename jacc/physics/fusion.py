"""``materialize``: compute shared intermediate values once per particle under XLA.

XLA's CPU backend fuses elementwise code into loops, one loop per output array. A cheap
intermediate that several outputs share is not stored but recomputed inside each of their
loops; behind a chain of polynomial evaluations (`jacc.physics.trig.sincos`) that makes an
element's map several times dearer than its arithmetic. Expensive operations (division,
square root, reductions) are the points at which XLA stores a value and lets the loops read
it. ``materialize`` routes its arguments through one reduction over a padding axis
(``v + 0``), so they are computed in one loop and stored: the values are unchanged (up to
the sign of a zero), and so are their derivatives.

Measured on the chromatic quadrupole of the FODO ring (2048 particles): 660 vector
operations per map without, 192 with, 1.4x faster.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["materialize"]


def materialize(*values):
    """The arrays ``values`` (same shape), computed in one XLA loop and stored.

    Returns a tuple even for one argument.
    """
    padded = tuple(jnp.stack([v, jnp.zeros_like(v)], axis=-1) for v in values)
    return jax.lax.reduce(padded, tuple(0.0 for _ in values),
                          lambda a, b: tuple(p + q for p, q in zip(a, b)), (padded[0].ndim - 1,))
