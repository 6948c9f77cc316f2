"""Beam observables: diagnostic outputs of the tracking and envelope models (centroid, rms
sizes, emittances, moments), computed from a beam's first and second moments,
differentiable and jittable.

Particles give their moments with `particle_moments` (lost particles, not alive or with
non-finite coordinates, are left out); an envelope gives them directly.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["OBSERVABLES", "particle_moments", "compute"]


def particle_moments(x, alive):
    """``(mean (6,), covariance (6, 6), number alive)`` of MAD-X coordinates ``x`` (n, 6).

    The covariance is the second central moment (no Bessel correction).
    """
    ok = alive & jnp.all(jnp.isfinite(x), axis=1)
    w = ok.astype(x.dtype)
    xs = jnp.where(ok[:, None], x, 0.0)
    n = jnp.sum(w)
    mean = w @ xs / n
    d = (xs - mean) * w[:, None]
    return mean, d.T @ d / n, n


def _sqrt(v):
    pos = v > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, v, 1.0)), 0.0)


def beam_sizes(mean, cov):
    """rms of each coordinate: ``sigma_x`` [m], ``sigma_px``, ``sigma_y`` [m], ..."""
    return _sqrt(jnp.diagonal(cov))


def emittances(mean, cov):
    """Projected rms emittances of (x, px), (y, py), (t, pt) [m]."""
    return _sqrt(jnp.stack([cov[i, i] * cov[i + 1, i + 1] - cov[i, i + 1] ** 2 for i in (0, 2, 4)]))


def beam_moments(mean, cov):
    """Ten transverse moments: ``<x>, <px>, <y>, <py>`` [m, 1], then per plane the rms of
    position and momentum and their correlation coefficient: ``sigma_x, sigma_px, r_xpx,
    sigma_y, sigma_py, r_ypy`` (what a linear section's transverse output depends on)."""
    sz = _sqrt(jnp.diagonal(cov))

    def plane(i):
        return [sz[i], sz[i + 1], cov[i, i + 1] / (sz[i] * sz[i + 1])]

    return jnp.stack([mean[0], mean[1], mean[2], mean[3], *plane(0), *plane(2)])


# name: (function of (mean, cov), port type, shape)
OBSERVABLES = {
    "centroid": (lambda mean, cov: mean, "vector", [6]),
    "covariance": (lambda mean, cov: cov, "vector", [6, 6]),
    "beam_sizes": (beam_sizes, "vector", [6]),
    "emittances": (emittances, "vector", [3]),
    "beam_moments": (beam_moments, "vector", [10]),
}


def compute(names, mean, cov) -> dict:
    """The observables ``names`` (those of `OBSERVABLES` among them) of a beam's moments."""
    return {n: OBSERVABLES[n][0](mean, cov) for n in names if n in OBSERVABLES}


def outputs_of(extra: dict) -> dict:
    """`OBSERVABLES` as ``OUTPUTS`` entries (name -> (type, shape)), plus ``extra``."""
    return {**{k: (v[1], v[2]) for k, v in OBSERVABLES.items()}, **extra}
