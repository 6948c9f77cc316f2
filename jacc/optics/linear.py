"""Courant-Snyder functions from transfer matrices (uncoupled planes), vectorised over rows."""

from __future__ import annotations

import jax.numpy as jnp


def periodic_twiss_2x2(m):
    """``(beta, alpha, q_frac, stable)`` of a 2x2 one-turn matrix (fractional tune in [0, 1))."""
    cosmu = 0.5 * (m[0, 0] + m[1, 1])
    stable = jnp.abs(cosmu) < 1.0
    c = jnp.clip(cosmu, -1.0 + 1e-15, 1.0 - 1e-15)
    sinmu = jnp.sign(m[0, 1]) * jnp.sqrt(1.0 - c * c)
    beta = m[0, 1] / sinmu
    alpha = (m[0, 0] - m[1, 1]) / (2.0 * sinmu)
    mu = jnp.arctan2(sinmu, c)
    q = jnp.where(mu < 0, mu + 2 * jnp.pi, mu) / (2 * jnp.pi)
    return beta, alpha, q, stable


def propagate_twiss(r, beta0, alpha0):
    """Beta, alpha and phase [2 pi] at rows of transfer matrices ``r`` (n, 2, 2) from the start.

    The phase is unwrapped along the rows (each element advances it by less than pi).
    """
    r11, r12, r21, r22 = r[:, 0, 0], r[:, 0, 1], r[:, 1, 0], r[:, 1, 1]
    a = r11 * beta0 - r12 * alpha0
    beta = (a * a + r12 * r12) / beta0
    alpha = -(a * (r21 * beta0 - r22 * alpha0) + r12 * r22) / beta0
    mu = jnp.unwrap(jnp.arctan2(r12, a))
    return beta, alpha, mu / (2 * jnp.pi)
