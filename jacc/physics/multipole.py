"""Thin multipoles (normal and skew, any order) and thick sextupoles and octupoles.

MAD-X convention: with ``z = x + i y`` and integrated strengths ``knl[n]``, ``ksl[n]``
[1/m^n], a thin multipole kicks

    px -= Re[ sum_n (knl[n] + i ksl[n]) z^n / n! ],   py += Im[ same sum ].

The kick does not scale with momentum (``px`` is canonical, normalised by ``p0``). A thin
multipole also bends the reference orbit, by ``h`` = ``angle``, which defaults to ``knl[0]``
(MAD-X, whose SURVEY turns by ``ANGLE``, else ``K0L``; Xsuite's ``hxl``): a particle of
momentum ``1 + delta`` then gets ``px += h (1 + delta)`` and ``t -= h x / beta``. With
``h = knl[0]`` the on-momentum orbit is not deflected and only the dispersive part
``knl[0] delta`` remains; a dipole field beyond the bend (a field error, or ``ANGLE != K0L``)
kicks the orbit by ``h - knl[0]``, independent of momentum. (MAD-X's TWISS and TRACK keep
the chromatic and path-length terms of ``K0L`` even when ``ANGLE`` differs; the orbit kick is
the same.)
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from jacc.physics.base import DriftKick, ElementPhysics
from jacc.physics.drift import drift_matrix, exact_drift, expanded_drift, one_plus_delta

__all__ = [
    "Multipole",
    "Octupole",
    "Sextupole",
    "XSUITE_DEFAULTS",
    "multipole_kick",
    "pure_multipole_kick",
]


def multipole_kick(x, y, knl, ksl, skip_normal_dipole=False):
    """``(dpx, dpy)`` of a thin multipole with integrated strengths ``knl``, ``ksl``.

    ``knl`` and ``ksl`` are 1-D arrays of static length (padded to a common order); the
    complex polynomial is evaluated by Horner's rule. ``skip_normal_dipole`` leaves out the
    ``knl[0]`` term (handled with the reference bend by the caller).
    """
    order = max(knl.shape[0], ksl.shape[0]) - 1
    knl = jnp.pad(knl, (0, order + 1 - knl.shape[0]))
    ksl = jnp.pad(ksl, (0, order + 1 - ksl.shape[0]))
    inv_fact = [1.0 / math.factorial(n) for n in range(order + 1)]
    re = knl[order] * inv_fact[order]
    im = ksl[order] * inv_fact[order]
    for n in range(order - 1, -1, -1):
        re, im = re * x - im * y, re * y + im * x
        if n > 0 or not skip_normal_dipole:
            re = re + knl[n] * inv_fact[n]
        im = im + ksl[n] * inv_fact[n]
    if order == 0 and skip_normal_dipole:
        re = jnp.zeros_like(re)
    return -re, im


def pure_multipole_kick(x, y, kl, ksl, order):
    """``(dpx, dpy)`` of a single thin multipole of static ``order`` (2: sextupole, 3: octupole).

    Args:
        x, y: transverse position [m].
        kl, ksl: integrated normal and skew strengths [1/m^order].
        order: the multipole order n (``z^n / n!``).
    """
    zr, zi = x, y
    for _ in range(order - 1):
        zr, zi = zr * x - zi * y, zr * y + zi * x
    f = 1.0 / math.factorial(order)
    return -(kl * zr - ksl * zi) * f, (kl * zi + ksl * zr) * f


class Multipole(ElementPhysics):
    """Thin multipole. Fields: ``knl``, ``ksl`` (integrated strengths, vectors of length n+1).

    Attributes:
        bend_reference: if True (MAD-X and Xsuite), the reference orbit is bent by ``angle``,
            leaving the chromatic kick of that bend, its path-length term and the orbit kick
            ``angle - knl[0]``; if False, ``knl[0]`` is a plain kick ``px -= knl[0]``.
        angle: the reference bend [rad], static (geometry, as the description's); None:
            ``knl[0]``, following it when ``knl`` is traced.
    """

    fields: ClassVar[tuple[str, ...]] = ("knl", "ksl")
    bend_reference: bool = eqx.field(static=True, default=True)
    angle: float | None = eqx.field(static=True, default=None)

    def kick(self, p, x, frac, ref):
        knl, ksl = _strengths(p)
        x0, px, y0, py, t, pt = x
        if not self.bend_reference:
            dpx, dpy = multipole_kick(x0, y0, knl, ksl)
            return jnp.stack([x0, px + frac * dpx, y0, py + frac * dpy, t, pt])
        # The kick -knl0 and the bend h (1 + delta) combine into h delta - (knl0 - h): without
        # an angle the matched part cancels exactly (no rounding of knl0 - knl0 on the orbit).
        excess = self._excess(knl)
        dpx, dpy = multipole_kick(x0, y0, knl, ksl, skip_normal_dipole=True)
        hl = frac * (knl[0] - excess)
        opd = one_plus_delta(pt, ref.beta0)
        delta = (2.0 * pt / ref.beta0 + pt * pt) / (opd + 1.0)
        inv_beta = (1.0 / ref.beta0 + pt) / opd
        return jnp.stack([x0, px + frac * (dpx - excess) + hl * delta, y0, py + frac * dpy,
                          t - hl * x0 * inv_beta, pt])

    def matrix(self, p, ref):
        knl, ksl = _strengths(p)
        k1l = knl[1] if knl.shape[0] > 1 else 0.0
        k1sl = ksl[1] if ksl.shape[0] > 1 else 0.0
        m = jnp.eye(6)
        m = m.at[1, 0].set(-k1l).at[1, 2].set(k1sl).at[3, 2].set(k1l).at[3, 0].set(k1sl)
        if self.bend_reference:
            h = (knl[0] - self._excess(knl)) / ref.beta0
            m = m.at[1, 5].set(h).at[4, 0].set(-h)
        return m

    def offset(self, p, ref):
        knl, ksl = _strengths(p)
        c = jnp.zeros(6).at[3].set(ksl[0])
        if self.bend_reference:
            return c.at[1].set(-self._excess(knl))
        return c.at[1].set(-knl[0])

    def _excess(self, knl):
        """``knl[0] - angle``: the dipole field beyond the reference bend (0 without an angle)."""
        return 0.0 if self.angle is None else knl[0] - self.angle


def _strengths(p):
    """``knl``, ``ksl`` as 1-D arrays of length >= 1 (a one-entry list arrives as a scalar)."""
    knl, ksl = jnp.atleast_1d(p["knl"]), jnp.atleast_1d(p["ksl"])
    return (knl if knl.shape[0] else jnp.zeros(1)), (ksl if ksl.shape[0] else jnp.zeros(1))


class _ThickPureMultipole(ElementPhysics):
    """Straight thick magnet of one multipole order: drifts and thin kicks."""

    thick: ClassVar[bool] = True
    order: ClassVar[int] = 2
    exact_drift: bool = eqx.field(static=True, default=False)

    def drift(self, p, x, frac, ref):
        step = exact_drift if self.exact_drift else expanded_drift
        return step(x, frac * p["l"], ref.beta0)

    def kick(self, p, x, frac, ref):
        kname, sname = self.fields[1], self.fields[2]
        w = frac * p["l"]
        x0, px, y0, py, t, pt = x
        dpx, dpy = pure_multipole_kick(x0, y0, w * p[kname], w * p[sname], self.order)
        return jnp.stack([x0, px + dpx, y0, py + dpy, t, pt])

    def matrix(self, p, ref):
        # First order about the reference orbit: the kick is of order >= 2 in (x, y).
        return drift_matrix(p["l"], ref.beta0, ref.gamma0)


class Sextupole(_ThickPureMultipole):
    """Thick sextupole. Fields: ``l`` [m], ``k2``, ``k2s`` [1/m^3].

    Attributes:
        exact_drift: exact drifts between kicks if True, expanded drifts if False.
    """

    fields: ClassVar[tuple[str, ...]] = ("l", "k2", "k2s")
    order: ClassVar[int] = 2


class Octupole(_ThickPureMultipole):
    """Thick octupole. Fields: ``l`` [m], ``k3``, ``k3s`` [1/m^4].

    Attributes:
        exact_drift: exact drifts between kicks if True, expanded drifts if False.
    """

    fields: ClassVar[tuple[str, ...]] = ("l", "k3", "k3s")
    order: ClassVar[int] = 3


# Xsuite 0.118: thin ``Multipole`` is kick only with hxl = angle, or knl[0] without one
# (importer: MAD-X angle=0 -> dipole); ``Sextupole``/``Octupole`` default to
# "drift-kick-drift-expanded" with the "uniform" integrator and num_multipole_kicks 0 = auto =
# 1 kick for a straight magnet.
XSUITE_DEFAULTS = {
    "Multipole": (Multipole(bend_reference=True), DriftKick(order=2, slices=1)),
    "Sextupole": (Sextupole(exact_drift=False), DriftKick(order=2, slices=1)),
    "Octupole": (Octupole(exact_drift=False), DriftKick(order=2, slices=1)),
}
