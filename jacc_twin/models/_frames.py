"""Phase-space values between coordinate systems at a port: engines compute in MAD-X
coordinates, a port may hand them over in ImpactX's or Xsuite's."""

from __future__ import annotations

import jax.numpy as jnp

from jacc.containers import Envelope
from jacc.particles import impactx_to_madx, madx_to_impactx, madx_to_xsuite, xsuite_to_madx

__all__ = ["to_madx", "from_madx"]

_FLIP = jnp.array([1.0, 1.0, 1.0, 1.0, -1.0, -1.0])


def _flip_envelope(env: Envelope) -> Envelope:
    # ImpactX's t and pt are MAD-X's with the opposite sign: a diagonal, self-inverse map
    return Envelope(sigma=env.sigma * _FLIP[:, None] * _FLIP[None, :], mean=env.mean * _FLIP)


def to_madx(value, system: str, rp):
    """``value`` (coordinates or an envelope) in ``system`` converted to MAD-X's."""
    if system == "madx":
        return value
    if isinstance(value, Envelope):
        return _flip_envelope(value)
    return impactx_to_madx(value) if system == "impactx" else xsuite_to_madx(value, rp)


def from_madx(value, system: str, rp):
    """``value`` in MAD-X coordinates converted to ``system``."""
    if system == "madx":
        return value
    if isinstance(value, Envelope):
        return _flip_envelope(value)
    return madx_to_impactx(value) if system == "impactx" else madx_to_xsuite(value, rp)
