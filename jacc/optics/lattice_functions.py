"""Lattice functions along a line from the normalising matrix ``W`` propagated to each row.

``W_i = M_i W_0`` (``M_i`` the transfer matrix from the start to row ``i``); the mode beta
and alpha functions are xtrack's (``betx1 = W00^2 + W01^2`` ...), the phase of each mode is
the angle that brings ``W_i`` back to the Courant-Snyder gauge, unwrapped along the rows.
All functions are vectorised over rows and differentiable.
"""

from __future__ import annotations

import jax.numpy as jnp

TWO_PI = 2.0 * jnp.pi


def safe_sqrt(v):
    """sqrt with a zero (not infinite) derivative at 0, so uncoupled optics keep finite gradients."""
    pos = v > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, v, 1.0)), 0.0)


def mode_functions(w):
    """Mode betas, alphas and unwrapped phases [2 pi] from ``w`` of shape (N, 2n, 2n), n >= 2."""
    out = {
        "betx1": w[:, 0, 0] ** 2 + w[:, 0, 1] ** 2,
        "bety1": w[:, 2, 0] ** 2 + w[:, 2, 1] ** 2,
        "betx2": w[:, 0, 2] ** 2 + w[:, 0, 3] ** 2,
        "bety2": w[:, 2, 2] ** 2 + w[:, 2, 3] ** 2,
        "alfx1": -(w[:, 0, 0] * w[:, 1, 0] + w[:, 0, 1] * w[:, 1, 1]),
        "alfy1": -(w[:, 2, 0] * w[:, 3, 0] + w[:, 2, 1] * w[:, 3, 1]),
        "alfx2": -(w[:, 0, 2] * w[:, 1, 2] + w[:, 0, 3] * w[:, 1, 3]),
        "alfy2": -(w[:, 2, 2] * w[:, 3, 2] + w[:, 2, 3] * w[:, 3, 3]),
        "mux": _phase(w[:, 0, 1], w[:, 0, 0]),
        "muy": _phase(w[:, 2, 3], w[:, 2, 2]),
    }
    if w.shape[-1] == 6:
        out["muzeta"] = _phase(w[:, 4, 5], w[:, 4, 4])
    return out


def _phase(sin_part, cos_part):
    mu = jnp.unwrap(jnp.arctan2(sin_part, cos_part)) / TWO_PI
    return mu - mu[0]


def dispersion_from_w(w):
    """Dispersion per ``pt`` (x, px, y, py) from a 6x6 ``W`` per row (xtrack's formula).

    The longitudinal columns are first rotated to the Courant-Snyder gauge (``W45 = 0``),
    where the formula reads ``D = W[:4, 5] / W[5, 5]``.
    """
    c4, c5 = w[:, :, 4], w[:, :, 5]
    phi = jnp.arctan2(w[:, 4, 5], w[:, 4, 4])[:, None]
    c5r = c5 * jnp.cos(phi) - c4 * jnp.sin(phi)
    return c5r[:, :4] / c5r[:, 5:6]


def c_minus(f, s, qx, qy, length):
    """Closest tune approach ``|C-|`` as xtrack defines it: the s-average of
    ``2 sqrt(r) |qx - qy| / (1 + r)`` with ``r = sqrt(bety1 betx2 / (betx1 bety2))``
    (fractional tunes)."""
    ratio = f["bety1"] * f["betx2"] / (f["betx1"] * f["bety2"])
    r = safe_sqrt(ratio)
    local = 2.0 * safe_sqrt(r) * jnp.abs(jnp.mod(qx, 1.0) - jnp.mod(qy, 1.0)) / (1.0 + r)
    return jnp.sum(0.5 * (local[1:] + local[:-1]) * jnp.diff(s)) / length


def montague(beta, alpha, dbeta, dalpha):
    """Montague chromatic function ``W`` from beta, alpha and their derivatives in delta."""
    b = dbeta / beta
    a = dalpha - alpha * b
    return safe_sqrt(a * a + b * b)
