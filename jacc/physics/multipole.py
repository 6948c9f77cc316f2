"""Thin multipoles (normal and skew, any order) and thick sextupoles and octupoles.

MAD-X convention: with ``z = x + i y`` and integrated strengths ``knl[n]``, ``ksl[n]``
[1/m^n], a thin multipole kicks

    px -= Re[ sum_n (knl[n] + i ksl[n]) z^n / n! ],   py += Im[ same sum ].

The kick does not scale with momentum (``px`` is canonical, normalised by ``p0``). In MAD-X
(and Xsuite's importer) the dipole term of a thin multipole also bends the reference orbit
by ``knl[0]`` (``ANGLE`` defaults to ``K0L``): a particle of momentum ``1 + delta`` then
gets ``px += knl[0] (1 + delta)`` and ``t -= knl[0] x / beta``, so the on-momentum orbit is
not deflected and only the dispersive part ``knl[0] delta`` remains.
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
        bend_reference: if True (MAD-X and Xsuite), ``knl[0]`` also bends the reference
            orbit, leaving the chromatic kick ``knl[0] delta`` and the path-length term;
            if False, ``knl[0]`` is a plain kick ``px -= knl[0]``.
    """

    fields: ClassVar[tuple[str, ...]] = ("knl", "ksl")
    bend_reference: bool = eqx.field(static=True, default=True)

    def kick(self, p, x, frac, ref):
        knl, ksl = p["knl"], p["ksl"]
        x0, px, y0, py, t, pt = x
        if not self.bend_reference:
            dpx, dpy = multipole_kick(x0, y0, knl, ksl)
            return jnp.stack([x0, px + frac * dpx, y0, py + frac * dpy, t, pt])
        # The kick -knl0 and the bend knl0 (1 + delta) combine into knl0 delta (kept exact).
        dpx, dpy = multipole_kick(x0, y0, knl, ksl, skip_normal_dipole=True)
        hl = frac * knl[0]
        opd = one_plus_delta(pt, ref.beta0)
        delta = (2.0 * pt / ref.beta0 + pt * pt) / (opd + 1.0)
        inv_beta = (1.0 / ref.beta0 + pt) / opd
        return jnp.stack(
            [x0, px + frac * dpx + hl * delta, y0, py + frac * dpy, t - hl * x0 * inv_beta, pt]
        )

    def matrix(self, p, ref):
        knl, ksl = p["knl"], p["ksl"]
        k1l = knl[1] if knl.shape[0] > 1 else 0.0
        k1sl = ksl[1] if ksl.shape[0] > 1 else 0.0
        m = jnp.eye(6)
        m = m.at[1, 0].set(-k1l).at[1, 2].set(k1sl).at[3, 2].set(k1l).at[3, 0].set(k1sl)
        if self.bend_reference:
            h = knl[0] / ref.beta0
            m = m.at[1, 5].set(h).at[4, 0].set(-h)
        return m

    def offset(self, p, ref):
        c = jnp.zeros(6).at[3].set(p["ksl"][0])
        return c if self.bend_reference else c.at[1].set(-p["knl"][0])


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


# Xsuite 0.118: thin ``Multipole`` is kick only with hxl = knl[0] (importer: MAD-X angle=0 ->
# dipole); ``Sextupole``/``Octupole`` default to "drift-kick-drift-expanded" with the
# "uniform" integrator and num_multipole_kicks 0 = auto = 1 kick for a straight magnet.
XSUITE_DEFAULTS = {
    "Multipole": (Multipole(bend_reference=True), DriftKick(order=2, slices=1)),
    "Sextupole": (Sextupole(exact_drift=False), DriftKick(order=2, slices=1)),
    "Octupole": (Octupole(exact_drift=False), DriftKick(order=2, slices=1)),
}
