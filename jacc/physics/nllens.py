"""Thin Danilov-Nagaitsev nonlinear lens (IOTA elliptic insert), MAD-X ``nllens``.

Fields: ``knll`` [m] (integrated strength; the quadrupole term of the potential is
``k1 l = 2 knll / cnll^2``), ``cnll`` [m] (the singular points sit at ``x = +-cnll, y = 0``).
In elliptic coordinates of the scaled position ``(X, Y) = (x, y) / cnll``,
``u = (r1 + r2) / 2``, ``v = (r2 - r1) / 2`` with ``r1,2 = |(X, Y) -+ (1, 0)|``, the potential
(Danilov and Nagaitsev, PRSTAB 13, 084002 (2010)) is

    U = [u sqrt(u^2 - 1) acosh(u) + v sqrt(1 - v^2) (acos(v) - pi/2)] / (u^2 - v^2)

and the kick is ``(px, py) += (knll / cnll) grad_(X, Y) U`` (not scaled with momentum, as in
MAD-X and Xsuite). The terms in ``u`` are written through ``w = u^2 - 1`` as
``acosh(u) = asinh(sqrt(w))``, with ``asinh(sqrt(w)) / sqrt(w)`` a smooth function of ``w``,
so the kick and its derivatives stay finite on the midplane ``y = 0`` (``u = 1``).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from jacc.physics.base import DriftKick, ElementPhysics

__all__ = ["NonlinearLens", "XSUITE_DEFAULTS", "nonlinear_lens_kick"]

# asinh(sqrt(w)) / sqrt(w) = sum_n (-1)^n (2n)! / (4^n (n!)^2 (2n+1)) w^n, for |w| < 1e-3
# (the first omitted term is below 1e-17).
_ASINHC = (1.0, -1.0 / 6.0, 3.0 / 40.0, -5.0 / 112.0, 35.0 / 1152.0)
_W_SMALL = 1e-3


def _asinhc(w):
    """``asinh(sqrt(w)) / sqrt(w)``, smooth through ``w = 0`` (also for small ``w < 0``)."""
    small = jnp.abs(w) < _W_SMALL
    ws = jnp.where(small, w, 0.0)
    series = _ASINHC[-1]
    for c in reversed(_ASINHC[:-1]):
        series = series * ws + c
    sw = jnp.sqrt(jnp.where(small, 1.0, jnp.abs(w)))
    return jnp.where(small, series, jnp.arcsinh(sw) / sw)


def nonlinear_lens_kick(x, y, knll, cnll):
    """``(dpx, dpy)`` of the thin nonlinear lens at position ``(x, y)`` [m]."""
    k = knll / cnll
    xn, yn = x / cnll, y / cnll
    r1 = jnp.sqrt((xn - 1.0) ** 2 + yn * yn)
    r2 = jnp.sqrt((xn + 1.0) ** 2 + yn * yn)
    inv_r1, inv_r2 = 1.0 / r1, 1.0 / r2
    u = 0.5 * (r1 + r2)
    v = 0.5 * (r2 - r1)
    w = u * u - 1.0
    a = _asinhc(w)  # acosh(u) / sqrt(u^2 - 1)
    one_m_v2 = 1.0 - v * v
    # |v| < 1 off the outer branch cuts (y = 0, |x| > cnll), where the lens is singular.
    sv = jnp.sqrt(jnp.where(one_m_v2 > 0.0, one_m_v2, 1.0))
    asv = jnp.arcsin(v)  # pi/2 - acos(v)
    q = u * u - v * v
    inv_q = 1.0 / q
    num = u * w * a - v * asv * sv  # numerator of U
    du = (u + w * a + u * u * a) * inv_q - 2.0 * u * num * inv_q * inv_q
    dv = 2.0 * v * num * inv_q * inv_q - (v + asv * sv - v * v * asv / sv) * inv_q
    dux = 0.5 * ((xn - 1.0) * inv_r1 + (xn + 1.0) * inv_r2)
    duy = 0.5 * yn * (inv_r1 + inv_r2)
    dvx = 0.5 * ((xn + 1.0) * inv_r2 - (xn - 1.0) * inv_r1)
    dvy = 0.5 * yn * (inv_r2 - inv_r1)
    return k * (du * dux + dv * dvx), k * (du * duy + dv * dvy)


class NonlinearLens(ElementPhysics):
    """Thin Danilov-Nagaitsev lens. Fields: ``knll`` [m], ``cnll`` [m]."""

    fields: ClassVar[tuple[str, ...]] = ("knll", "cnll")

    def kick(self, p, x, frac, ref):
        x0, px, y0, py, t, pt = x
        dpx, dpy = nonlinear_lens_kick(x0, y0, p["knll"], p["cnll"])
        return jnp.stack([x0, px + frac * dpx, y0, py + frac * dpy, t, pt])

    def matrix(self, p, ref):
        # First order about the axis: a thin quadrupole of k1 l = 2 knll / cnll^2.
        k1l = 2.0 * p["knll"] / (p["cnll"] * p["cnll"])
        return jnp.eye(6).at[1, 0].set(-k1l).at[3, 2].set(k1l)


# Xsuite 0.118 importer: ``NonLinearLens(knll, cnll)``, a thin kick (no drift, no chromatic
# scaling), the MAD-X formula (Xsuite sets the removable u = 1 term to 0 where its
# coefficient vanishes; the limit is used here, same kick).
XSUITE_DEFAULTS = {"NonlinearLens": (NonlinearLens(), DriftKick(order=2, slices=1))}
