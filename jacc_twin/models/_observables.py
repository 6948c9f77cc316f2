"""Beam observables: diagnostic outputs of the tracking and envelope models (centroid, rms
sizes, emittances, moments), computed from a beam's first and second moments,
differentiable and jittable.

Particles give their moments with `particle_moments` (lost particles, not alive or with
non-finite coordinates, are left out); an envelope gives them directly.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["MOMENT_NAMES", "OBSERVABLES", "particle_moments", "compute"]


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


_COORDS = ("x", "px", "y", "py", "t", "pt")
_UPPER = [(i, j) for i in range(6) for j in range(i, 6)]
MOMENT_NAMES = tuple(f"mean_{c}" for c in _COORDS) + tuple(f"cov_{_COORDS[i]}_{_COORDS[j]}" for i, j in _UPPER)
"""Names of the 27 elements of ``beam_moments``: the centroid, then the covariance's upper
triangle row by row (``cov_x_x``, ``cov_x_px``, ...)."""


def beam_moments(mean, cov):
    """The beam's first and second moments as one vector of 27 (`MOMENT_NAMES`): what a
    (nearly) linear section's output moments depend on."""
    rows, cols = zip(*_UPPER)
    return jnp.concatenate([mean, cov[jnp.array(rows), jnp.array(cols)]])


# name: (function of (mean, cov), port type, shape)
OBSERVABLES = {
    "centroid": (lambda mean, cov: mean, "vector", [6]),
    "covariance": (lambda mean, cov: cov, "vector", [6, 6]),
    "beam_sizes": (beam_sizes, "vector", [6]),
    "emittances": (emittances, "vector", [3]),
    "beam_moments": (beam_moments, "vector", [27]),
}


def compute(names, mean, cov) -> dict:
    """The observables ``names`` (those of `OBSERVABLES` among them) of a beam's moments."""
    return {n: OBSERVABLES[n][0](mean, cov) for n in names if n in OBSERVABLES}


def outputs_of(extra: dict) -> dict:
    """`OBSERVABLES` as ``OUTPUTS`` entries (name -> (type, shape)), plus ``extra``."""
    return {**{k: (v[1], v[2]) for k, v in OBSERVABLES.items()}, **extra}
