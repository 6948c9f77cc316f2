"""Field-free drift: exact and paraxial (expanded) maps, and the kinematics they share.

Coordinates are MAD-X canonical ``(x, px, y, py, t, pt)`` (see :mod:`jacc.particles`). With
``1 + delta = sqrt(1 + 2 pt / beta0 + pt^2)`` and ``1 / beta = (1 / beta0 + pt) / (1 + delta)``:

* exact drift (Hamiltonian ``pt / beta0 - pz``, ``pz = sqrt((1 + delta)^2 - px^2 - py^2)``):
  ``x += L px / pz``, ``t += L (1 / beta0 - (1 / beta0 + pt) / pz)``;
* expanded drift (``pz`` expanded to second order in ``px, py``, as Xsuite's ``Drift`` and
  MAD-X's ``thin`` drifts): ``x += L px / (1 + delta)``,
  ``t += L (1 / beta0 - 1 / beta) - (L / beta) (x'^2 + y'^2) / 2``.

The longitudinal increments are written without the ``1 / beta0 - 1 / beta`` cancellation,
so they stay accurate for small ``pt`` and low ``beta0`` (2.5 MeV protons).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from jacc.physics.base import ElementPhysics, Flow

__all__ = [
    "Drift",
    "XSUITE_DEFAULTS",
    "drift_matrix",
    "exact_drift",
    "expanded_drift",
    "one_plus_delta",
    "time_of_flight_slip",
]


def one_plus_delta(pt, beta0):
    """Relative momentum ``p / p0 = 1 + delta`` of a particle with energy deviation ``pt``."""
    return jnp.sqrt(1.0 + 2.0 * pt / beta0 + pt * pt)


def time_of_flight_slip(pt, opd, beta0):
    """``1 / beta0 - 1 / beta`` [1] (t gained per metre of on-axis flight), cancellation-free.

    Uses ``(1 + delta) - 1 = (2 pt / beta0 + pt^2) / (2 + delta)``.
    """
    dmo = (2.0 * pt / beta0 + pt * pt) / (opd + 1.0)
    return (dmo / beta0 - pt) / opd


def expanded_drift(x, length, beta0):
    """Paraxial drift of one particle over ``length`` [m] (Xsuite ``Drift``, model expanded).

    Args:
        x: 6-vector ``(x, px, y, py, t, pt)``.
        length: drift length [m] (may be negative inside a split integrator).
        beta0: reference relativistic beta.
    """
    x0, px, y0, py, t, pt = x
    opd = one_plus_delta(pt, beta0)
    inv_opd = 1.0 / opd
    xp, yp = px * inv_opd, py * inv_opd
    inv_beta = (1.0 / beta0 + pt) * inv_opd
    dt = length * (time_of_flight_slip(pt, opd, beta0) - 0.5 * inv_beta * (xp * xp + yp * yp))
    return jnp.stack([x0 + xp * length, px, y0 + yp * length, py, t + dt, pt])


def exact_drift(x, length, beta0):
    """Exact field-free drift of one particle over ``length`` [m] (one square root).

    Args:
        x: 6-vector ``(x, px, y, py, t, pt)``.
        length: drift length [m] (may be negative inside a split integrator).
        beta0: reference relativistic beta.
    """
    x0, px, y0, py, t, pt = x
    # pz^2 - 1 without forming (1 + delta)^2 - 1 by subtraction.
    pz2m1 = 2.0 * pt / beta0 + pt * pt - px * px - py * py
    pz = jnp.sqrt(1.0 + pz2m1)
    inv_pz = 1.0 / pz
    # 1/beta0 - (1/beta0 + pt)/pz = ((pz - 1)/beta0 - pt)/pz
    dt = length * (pz2m1 / (pz + 1.0) / beta0 - pt) * inv_pz
    return jnp.stack([x0 + px * inv_pz * length, px, y0 + py * inv_pz * length, py, t + dt, pt])


def drift_matrix(length, beta0, gamma0):
    """First-order 6x6 map of a drift of ``length`` [m] (MAD-X ``rmatrix``).

    ``R12 = R34 = L`` and ``R56 = L / (beta0 gamma0)^2``; exact and expanded drifts agree
    to first order.
    """
    length = jnp.asarray(length, dtype=float)
    m = jnp.eye(6, dtype=length.dtype)
    r56 = length / (beta0 * gamma0) ** 2
    return m.at[0, 1].set(length).at[2, 3].set(length).at[4, 5].set(r56)


class Drift(ElementPhysics):
    """A field-free drift. Fields: ``l`` [m].

    Attributes:
        exact: exact square-root drift if True, paraxial (expanded) drift if False.
    """

    fields: ClassVar[tuple[str, ...]] = ("l",)
    thick: ClassVar[bool] = True
    has_kick: ClassVar[bool] = False
    exact: bool = eqx.field(static=True, default=False)

    def drift(self, p, x, frac, ref):
        step = exact_drift if self.exact else expanded_drift
        return step(x, frac * p["l"], ref.beta0)

    def matrix(self, p, ref):
        return drift_matrix(p["l"], ref.beta0, ref.gamma0)


# Xsuite 0.118: MAD-X drifts become ``xt.Drift`` with model "adaptive", which the kernel
# resolves to the expanded drift (exact only if XTRACK_USE_EXACT_DRIFTS is defined).
XSUITE_DEFAULTS = {"Drift": (Drift(exact=False), Flow())}
