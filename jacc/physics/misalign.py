"""Misalignments: transverse offsets ``dx, dy`` [m] and roll ``tilt`` [rad] of any element.

The element's own frame is reached at the entrance by shifting the particle by ``(-dx, -dy)``
and rotating its transverse coordinates by ``tilt`` about ``s``; the exit applies the inverse
in reverse order. This is MAD-X's DX/DY (EALIGN) and TILT (plus DPSI) convention, and
Xsuite's ``shift_x``, ``shift_y``, ``rot_s_rad`` on straight elements (its importer maps
``shift_x = DX``, ``shift_y = DY``, ``rot_s_rad = TILT + DPSI``). A positive tilt rotates
the element counter-clockwise seen along ``s``: a normal quadrupole tilted by pi/4 is a skew
quadrupole with ``k1s = -k1`` (MAD-X).
"""

from __future__ import annotations

import jax.numpy as jnp

from jacc.physics.base import ElementPhysics

__all__ = ["Misaligned", "misalign_entry", "misalign_exit", "roll"]


def roll(x, angle):
    """Express ``x`` in a frame rolled by ``angle`` [rad] about ``s`` (positions and momenta)."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    x0, px, y0, py, t, pt = x
    return jnp.stack([c * x0 + s * y0, c * px + s * py, c * y0 - s * x0, c * py - s * px, t, pt])


def misalign_entry(x, dx, dy, tilt):
    """From the reference frame into the frame of an element offset by ``(dx, dy)``, rolled by ``tilt``."""
    c, s = jnp.cos(tilt), jnp.sin(tilt)
    x0, px, y0, py, t, pt = x
    x0, y0 = x0 - dx, y0 - dy
    return jnp.stack([c * x0 + s * y0, c * px + s * py, c * y0 - s * x0, c * py - s * px, t, pt])


def misalign_exit(x, dx, dy, tilt):
    """Back from the element frame into the reference frame (inverse of :func:`misalign_entry`)."""
    c, s = jnp.cos(tilt), jnp.sin(tilt)
    x0, px, y0, py, t, pt = x
    return jnp.stack(
        [c * x0 - s * y0 + dx, c * px - s * py, c * y0 + s * x0 + dy, c * py + s * px, t, pt]
    )


class Misaligned(ElementPhysics):
    """Wraps an element's physics with offsets and roll. Fields: the inner fields, ``dx``, ``dy``, ``tilt``.

    Entry and exit transforms go around the inner element's own entry/exit, so every
    method (``Linear``, ``DriftKick``, ``Flow``) sees the misaligned element; ``matrix`` and
    ``offset`` are those of the body in its own frame, as for any element.

    Attributes:
        inner: the physics of the aligned element.
    """

    inner: ElementPhysics

    @property
    def fields(self):
        return tuple(self.inner.fields) + ("dx", "dy", "tilt")

    @property
    def thick(self):
        return self.inner.thick

    @property
    def has_kick(self):
        return self.inner.has_kick

    def entry(self, p, x, ref):
        x = misalign_entry(x, p["dx"], p["dy"], p["tilt"])
        return self.inner.entry(p, x, ref)

    def exit(self, p, x, ref):
        x = self.inner.exit(p, x, ref)
        return misalign_exit(x, p["dx"], p["dy"], p["tilt"])

    def entry_inverse(self, p, x, ref):
        return misalign_exit(self.inner.entry_inverse(p, x, ref), p["dx"], p["dy"], p["tilt"])

    def exit_inverse(self, p, x, ref):
        return self.inner.exit_inverse(p, misalign_entry(x, p["dx"], p["dy"], p["tilt"]), ref)

    def drift(self, p, x, frac, ref):
        return self.inner.drift(p, x, frac, ref)

    def kick(self, p, x, frac, ref):
        return self.inner.kick(p, x, frac, ref)

    def drift_setup(self, p, frac, ref):
        return self.inner.drift_setup(p, frac, ref)

    def drift_with(self, p, x, setup, ref):
        return self.inner.drift_with(p, x, setup, ref)

    def matrix(self, p, ref):
        return self.inner.matrix(p, ref)

    def offset(self, p, ref):
        return self.inner.offset(p, ref)
