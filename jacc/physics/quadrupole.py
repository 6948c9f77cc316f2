"""Thick quadrupole (normal ``k1`` and skew ``k1s``): drift-kick split, Xsuite's chromatic
thick-lens split, and the exact linear map.

Field strengths follow MAD-X: ``k1 = (1 / B rho) dBy/dx`` [1/m^2], ``k1s`` the skew gradient
[1/m^2], so that a thin slice of length ``dl`` kicks ``px -= k1 dl x - k1s dl y`` and
``py += k1 dl y + k1s dl x`` (the kick does not scale with momentum: ``px`` is canonical).

The trigonometric/hyperbolic functions of a quadrupole of either sign are written as smooth
functions of ``u = g^2 L^4`` (``g^2 = k1^2 + k1s^2``), so maps and gradients are finite at
zero strength and across the sign change of ``k1``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from jacc.physics.base import Flow, DriftKick, ElementPhysics
from jacc.physics.drift import exact_drift, expanded_drift, one_plus_delta, time_of_flight_slip
from jacc.physics.trig import sincos

__all__ = [
    "ChromaticQuadrupole",
    "Quadrupole",
    "XSUITE_DEFAULTS",
    "chromatic_quadrupole_flow",
    "quadrupole_matrix",
]

# Series of the four functions below for u < 1e-4 (phi < 0.1), where the closed forms lose
# digits (relative error ~eps / phi^2 in f2 and f3, also in their derivatives): terms
# u^m / (4m + j)!, m = 0..2 (the first omitted term is below 1e-20). Above, the closed-form
# errors stay below 1e-14 and are further multiplied by phi^2 in the maps.
_U_SMALL = 1e-4
_SERIES = tuple(tuple(1.0 / math.factorial(4 * m + j) for m in range(3)) for j in range(4))


def _horner(coeffs, u):
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = acc * u + c
    return acc


def even_odd_functions(u):
    """The four entire functions ``(f0, f1, f2, f3)(u)``, ``f_j = sum_m u^m / (4m + j)!``.

    With ``phi = u^(1/4)``: ``f0 = (cosh phi + cos phi) / 2``,
    ``f2 = (cosh phi - cos phi) / (2 phi^2)``, ``f1 = (sinh phi + sin phi) / (2 phi)``,
    ``f3 = (sinh phi - sin phi) / (2 phi^3)``. For a 2x2 strength matrix ``K`` with
    ``K^2 = g^2 I`` and ``u = g^2 L^4``, ``cos(sqrt(K) L) = f0 I - L^2 f2 K`` and
    ``sin(sqrt(K) L) / sqrt(K) = L f1 I - L^3 f3 K``.
    """
    small = u < _U_SMALL
    us = jnp.where(small, u, 0.0)
    series = [_horner(_SERIES[j], us) for j in range(4)]
    # Closed forms on a safe argument (phi >= 0.1), so the unused branch never yields inf/NaN.
    phi = jnp.sqrt(jnp.sqrt(jnp.where(small, 1.0, u)))
    e = jnp.exp(phi)
    ch, sh = 0.5 * (e + 1.0 / e), 0.5 * (e - 1.0 / e)
    s, c = sincos(phi)
    phi2 = phi * phi
    closed = [
        0.5 * (ch + c),
        0.5 * (sh + s) / phi,
        0.5 * (ch - c) / phi2,
        0.5 * (sh - s) / (phi * phi2),
    ]
    return tuple(jnp.where(small, a, b) for a, b in zip(series, closed))


def _normal_quad_functions(k, length):
    """``(cx, sx, cy, sy)``: cos-like and sin-like functions of a normal quadrupole ``k``."""
    l2 = length * length
    f0, f1, f2, f3 = even_odd_functions(k * k * l2 * l2)
    ck = l2 * f2 * k
    sk = length * l2 * f3 * k
    sl = length * f1
    return f0 - ck, sl - sk, f0 + ck, sl + sk


def chromatic_quadrupole_flow(x, k1, length, beta0):
    """Exact flow of the paraxial normal quadrupole over ``length`` [m] (Xsuite mat-kick-mat body).

    The Hamiltonian is ``pt/beta0 - (1+delta) + (px^2+py^2) / (2 (1+delta)) + k1 (x^2-y^2)/2``:
    the focusing is ``k1 / (1 + delta)`` (chromatic), the transverse map linear, and ``t``
    carries the exact path length of the paraxial orbit.

    Args:
        x: 6-vector ``(x, px, y, py, t, pt)``.
        k1: normal gradient [1/m^2].
        length: length of the flow [m] (negative inside a split integrator).
        beta0: reference relativistic beta.
    """
    x0, px, y0, py, t, pt = x
    opd = one_plus_delta(pt, beta0)
    inv_opd = 1.0 / opd
    k = k1 * inv_opd
    cx, sx, cy, sy = _normal_quad_functions(k, length)
    xp, yp = px * inv_opd, py * inv_opd
    x1 = x0 * cx + xp * sx
    px1 = px * cx - k1 * x0 * sx
    y1 = y0 * cy + yp * sy
    py1 = py * cy + k1 * y0 * sy
    # Path length beyond ``length``: (1/2) int x'^2 + y'^2 ds, with x'(s) = -k x0 S + x0' C,
    # int S^2 = (L - C S) / (2k), int C^2 = (L + C S) / 2, int S C = S^2 / 2.
    extra_x = 0.25 * (k * x0 * x0 * (length - cx * sx) + xp * xp * (length + cx * sx)) - (
        0.5 * k * x0 * xp * sx * sx
    )
    extra_y = 0.25 * (-k * y0 * y0 * (length - cy * sy) + yp * yp * (length + cy * sy)) + (
        0.5 * k * y0 * yp * sy * sy
    )
    inv_beta = (1.0 / beta0 + pt) * inv_opd
    t1 = t + length * time_of_flight_slip(pt, opd, beta0) - (extra_x + extra_y) * inv_beta
    return jnp.stack([x1, px1, y1, py1, t1, pt])


def quadrupole_matrix(k1, k1s, length, beta0, gamma0):
    """Exact first-order 6x6 map of a quadrupole with normal ``k1`` and skew ``k1s`` [1/m^2].

    Solves ``q'' = -K q`` with ``K = [[k1, -k1s], [-k1s, -k1]]`` (``K^2 = (k1^2 + k1s^2) I``),
    plus ``R56 = L / (beta0 gamma0)^2``.
    """
    l2 = length * length
    g2 = k1 * k1 + k1s * k1s
    f0, f1, f2, f3 = even_odd_functions(g2 * l2 * l2)
    kmat = jnp.array([[k1, -k1s], [-k1s, -k1]])
    eye = jnp.eye(2)
    c = f0 * eye - l2 * f2 * kmat
    s = length * f1 * eye - length * l2 * f3 * kmat
    ks = -length * f1 * kmat + length * l2 * f3 * g2 * eye  # -K S
    m = jnp.zeros((6, 6))
    ix, ip = jnp.array([0, 2]), jnp.array([1, 3])
    m = m.at[ix[:, None], ix[None, :]].set(c)
    m = m.at[ix[:, None], ip[None, :]].set(s)
    m = m.at[ip[:, None], ix[None, :]].set(ks)
    m = m.at[ip[:, None], ip[None, :]].set(c)
    return m.at[4, 4].set(1.0).at[5, 5].set(1.0).at[4, 5].set(length / (beta0 * gamma0) ** 2)


class _QuadrupoleBase(ElementPhysics):
    fields: ClassVar[tuple[str, ...]] = ("l", "k1", "k1s")
    thick: ClassVar[bool] = True

    def matrix(self, p, ref):
        return quadrupole_matrix(p["k1"], p["k1s"], p["l"], ref.beta0, ref.gamma0)


class Quadrupole(_QuadrupoleBase):
    """Quadrupole split into field-free drifts and thin normal + skew quadrupole kicks.

    Fields: ``l`` [m], ``k1``, ``k1s`` [1/m^2]. Xsuite models "drift-kick-drift-exact" and
    "drift-kick-drift-expanded".

    Attributes:
        exact_drift: exact square-root drifts if True, expanded drifts if False.
    """

    exact_drift: bool = eqx.field(static=True, default=False)

    def drift(self, p, x, frac, ref):
        step = exact_drift if self.exact_drift else expanded_drift
        return step(x, frac * p["l"], ref.beta0)

    def kick(self, p, x, frac, ref):
        kl = frac * p["l"] * p["k1"]
        ksl = frac * p["l"] * p["k1s"]
        x0, px, y0, py, t, pt = x
        return jnp.stack([x0, px + ksl * y0 - kl * x0, y0, py + kl * y0 + ksl * x0, t, pt])


class ChromaticQuadrupole(_QuadrupoleBase):
    """Quadrupole whose integrable part is the exact chromatic thick lens of ``k1``.

    The drift piece is :func:`chromatic_quadrupole_flow` (focusing ``k1 / (1 + delta)``);
    the kick piece carries the skew gradient ``k1s`` only. With one slice this is Xsuite's
    default "mat-kick-mat" model; for ``k1s = 0`` the map is the same for any split.
    Fields: ``l`` [m], ``k1``, ``k1s`` [1/m^2].
    """

    def drift(self, p, x, frac, ref):
        return chromatic_quadrupole_flow(x, p["k1"], frac * p["l"], ref.beta0)

    def kick(self, p, x, frac, ref):
        ksl = frac * p["l"] * p["k1s"]
        x0, px, y0, py, t, pt = x
        return jnp.stack([x0, px + ksl * y0, y0, py + ksl * x0, t, pt])

    def simplify(self, method, constants):
        # Without a skew gradient the split is a composition of exact flows of one
        # Hamiltonian: one flow over the whole length is the same map at half the cost.
        if constants.get("k1s") == 0.0 and isinstance(method, DriftKick):
            return NormalChromaticQuadrupole(), Flow()
        return self, method


class NormalChromaticQuadrupole(ChromaticQuadrupole):
    """`ChromaticQuadrupole` with ``k1s = 0``: the chromatic thick lens is the whole map."""

    has_kick: ClassVar[bool] = False


# Xsuite 0.118 ``Quadrupole`` defaults (QUADRUPOLE_DEFAULT_MODEL 4 "mat-kick-mat", integrator
# "uniform", num_multipole_kicks 0 = auto = 1 for a straight magnet): half chromatic thick
# lens of k1, one thin k1s kick, half thick lens.
XSUITE_DEFAULTS = {"Quadrupole": (ChromaticQuadrupole(), DriftKick(order=2, slices=1))}
