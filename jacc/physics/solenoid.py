"""Uniform solenoid with hard-edge fringes (exact flow).

Field: ``l`` [m], ``ks`` [1/m] (MAD-X ``ks = Bs / (B rho)``). ``px, py`` are canonical
momenta; outside the body the vector potential vanishes, so they are the kinetic momenta
before and after the element and the hard-edge fringes need no separate map. Inside, with
``k = ks / 2``, the kinetic transverse momentum ``(px + k y, py - k x)`` keeps its modulus,
so ``pz`` is constant and the orbit is a helix: the map is a rotation of ``(x, y)`` and
``(px, py)`` by ``theta = k L / pz`` followed by a focusing map of angle ``theta`` in each
plane (as Xsuite's ``UniformSolenoid`` and MAD-X's thick solenoid).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from jacc.physics.base import ElementPhysics, Flow
from jacc.physics.trig import sincos

__all__ = ["Solenoid", "XSUITE_DEFAULTS", "sinc", "solenoid_flow", "solenoid_matrix"]


_SINC_SMALL = 1e-2  # below, 4 terms of the series are exact to rounding


def sinc(theta, sin_theta=None):
    """``sin(theta) / theta``, with exact derivatives at and near 0 (series for small theta).

    ``sin_theta``: ``sin(theta)`` when the caller has it already.
    """
    small = jnp.abs(theta) < _SINC_SMALL
    ts = jnp.where(small, 1.0, theta)
    t2 = theta * theta
    series = 1.0 - t2 / 6.0 * (1.0 - t2 / 20.0 * (1.0 - t2 / 42.0))
    s = jnp.sin(ts) if sin_theta is None else sin_theta
    return jnp.where(small, series, s / ts)


def _rotate_focus(x, px, y, py, c, s, si, k):
    """Rotate by ``theta`` (``c, s``), then focus with ``si = sin(theta) / k`` in each plane."""
    r0, r1 = c * x + s * y, c * px + s * py
    r2, r3 = c * y - s * x, c * py - s * px
    ks = k * s
    return c * r0 + si * r1, c * r1 - ks * r0, c * r2 + si * r3, c * r3 - ks * r2


def solenoid_flow(x, ks, length, beta0):
    """Exact map of a uniform solenoid body of strength ``ks`` [1/m] over ``length`` [m].

    Reduces to the exact drift at ``ks = 0``; one square root per particle.
    """
    x0, px, y0, py, t, pt = x
    k = 0.5 * ks
    kin_x, kin_y = px + k * y0, py - k * x0
    pz2m1 = 2.0 * pt / beta0 + pt * pt - kin_x * kin_x - kin_y * kin_y
    pz = jnp.sqrt(1.0 + pz2m1)
    inv_pz = 1.0 / pz
    theta = k * length * inv_pz
    s, c = sincos(theta)
    # sin(theta) / k = (L / pz) sinc(theta), finite (and differentiable) at k = 0.
    si = length * inv_pz * sinc(theta, s)
    x1, px1, y1, py1 = _rotate_focus(x0, px, y0, py, c, s, si, k)
    # t gains L (1/beta0 - (1/beta0 + pt)/pz), written without cancellation.
    dt = length * (pz2m1 / (pz + 1.0) / beta0 - pt) * inv_pz
    return jnp.stack([x1, px1, y1, py1, t + dt, pt])


def solenoid_matrix(ks, length, beta0, gamma0):
    """First-order 6x6 map of a hard-edge solenoid (MAD-X ``rmatrix``), fringes included."""
    k = 0.5 * ks
    theta = k * length
    c, s = jnp.cos(theta), jnp.sin(theta)
    si = length * sinc(theta)
    cols = []
    for j in range(4):
        e = [0.0] * 4
        e[j] = 1.0
        cols.append(jnp.stack(_rotate_focus(*e, c, s, si, k)))
    m4 = jnp.stack(cols, axis=1)
    m = jnp.eye(6).at[:4, :4].set(m4)
    return m.at[4, 5].set(length / (beta0 * gamma0) ** 2)


class Solenoid(ElementPhysics):
    """Uniform solenoid. Fields: ``l`` [m], ``ks`` [1/m]. Integrable: use ``Flow()``."""

    fields: ClassVar[tuple[str, ...]] = ("l", "ks")
    thick: ClassVar[bool] = True
    has_kick: ClassVar[bool] = False

    def drift(self, p, x, frac, ref):
        return solenoid_flow(x, p["ks"], frac * p["l"], ref.beta0)

    def matrix(self, p, ref):
        return solenoid_matrix(p["ks"], p["l"], ref.beta0, ref.gamma0)


# Xsuite 0.118: thick MAD-X solenoids become ``UniformSolenoid`` (model "sol-kick-sol" with an
# empty kick, so one exact solenoid flow over the whole length; edges only switch the vector
# potential on and off). Thin MAD-X solenoids (l = 0) become drifts, i.e. the identity.
XSUITE_DEFAULTS = {"Solenoid": (Solenoid(), Flow())}
