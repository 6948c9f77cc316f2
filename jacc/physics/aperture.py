"""Aperture tests: whether one particle is inside a rectangle, an ellipse or a circle.

Pure functions of the 6-vector ``(x, px, y, py, t, pt)`` returning a boolean scalar; the
boundary counts as inside (as Xsuite's ``LimitRect`` and ``LimitEllipse``), and NaN
coordinates count as outside, so a particle that blew up is flagged lost.
"""

from __future__ import annotations

__all__ = ["inside_circle", "inside_ellipse", "inside_rectangle"]


def inside_rectangle(x, a, b):
    """True if ``|x| <= a`` and ``|y| <= b`` (half sizes ``a, b`` [m])."""
    return (abs(x[0]) <= a) & (abs(x[2]) <= b)


def inside_ellipse(x, a, b):
    """True if ``(x / a)^2 + (y / b)^2 <= 1`` (semi-axes ``a, b`` [m]), without dividing."""
    a2, b2 = a * a, b * b
    return x[0] * x[0] * b2 + x[2] * x[2] * a2 <= a2 * b2


def inside_circle(x, r):
    """True if ``x^2 + y^2 <= r^2`` (radius ``r`` [m])."""
    return x[0] * x[0] + x[2] * x[2] <= r * r
