"""Dipole edge (pole face and fringe field) maps, in Xsuite's two edge models.

Coordinates are MAD-X canonical ``(x, px, y, py, t, pt)``; every map acts on one
particle. An edge is described by the dipole strength ``k0`` [1/m] of the magnet
(``h = angle / l`` for a bend whose field follows its curvature), its quadrupole and
sextupole strengths ``k1`` [1/m^2], ``k2`` [1/m^3] (full model only), the pole-face
angle ``e`` [rad], the half gap ``hgap`` [m] (MAD-X ``hgap``; the lattice's ``gap`` is
twice this) and the fringe-field integral ``fint``.

Edge models (xtrack 0.118 ``edge_entry_model`` / ``edge_exit_model``, and the ``model``
of ``xt.DipoleEdge``):

* :class:`LinearEdge` (``'linear'``, Xsuite's default; MAD-X's first-order edge): thin
  kicks ``px += r21 x``, ``py += r43 y`` with ``r21 = k0 tan(e)`` and
  ``r43 = -k0 tan(e - psi)``, ``psi = 2 k0 hgap fint (1 + sin^2 e) / cos e``; no
  momentum dependence, the same map at entry and exit.
* :class:`FullEdge` (``'full'``; ``multipole=False`` is ``'dipole-only'``): at the
  entry face a rotation of the frame by ``-e`` (``YRotation``), the MAD-NG dipole
  fringe (Forest's generating function with the finite-gap terms), the MAD-NG
  multipole fringe of ``k1``, ``k2`` and the quadrupole wedge, then the exact wedge of
  dipole field between the pole face and the rotated frame; the exit face applies the
  same pieces in reverse order with the fringe sign of ``k0`` flipped.
* :class:`NoEdge` (``'suppressed'``): identity.

Xsuite switches some pieces off below thresholds (no rotation for ``|e| < 1e-9``, no
fringe for ``|k0| < 1e-9``, a plain rotation instead of the wedge for ``|k0| < 1e-9``);
the maps here are written so that these limits come out smoothly (identity, or the
wedge's own limit), which keeps gradients finite at ``e = 0`` and ``k0 = 0``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from jacc.physics.base import fixed_point_inverse

__all__ = [
    "EdgeModel",
    "FullEdge",
    "LinearEdge",
    "NoEdge",
    "XSUITE_DEFAULTS",
    "XSUITE_DEFAULT_EDGE",
    "XSUITE_FULL_EDGE",
    "XSUITE_FULL_EDGE_MODEL",
    "linear_edge_coefficients",
    "linear_edge_matrix",
]

# Below this |product| xtrack drops the y^4 fringe term (fsad = 0), see track_dipole_fringe.h.
_FSAD_THRESHOLD = 1e-9


def _momentum_sq(pt, beta0):
    """``(1 + delta)^2 = 1 + 2 pt / beta0 + pt^2`` (no square root needed)."""
    return 1.0 + 2.0 * pt / beta0 + pt * pt


def atanc(z):
    """``atan(z) / z``, smooth (and with finite derivatives) through ``z = 0``."""
    small = jnp.abs(z) < 1e-3
    zs = jnp.where(small, 1.0, z)
    z2 = z * z
    # Taylor series: the next term, z^8 / 9, is below 1e-25 where it is used.
    series = 1.0 - z2 * (1.0 / 3.0 - z2 * (1.0 / 5.0 - z2 / 7.0))
    return jnp.where(small, series, jnp.arctan(zs) / zs)


# ---------------------------------------------------------------------------------------
# Pieces, on unpacked components c = (x, px, y, py, t, pt).
# ---------------------------------------------------------------------------------------


def _y_rotation(c, angle, beta0):
    """Rotation of the reference frame about the vertical axis (xtrack ``YRotation``)."""
    x, px, y, py, t, pt = c
    sa, ca, ta = jnp.sin(angle), jnp.cos(angle), jnp.tan(angle)
    pz = jnp.sqrt(_momentum_sq(pt, beta0) - px * px - py * py)
    ptt = 1.0 + ta * px / pz
    q = ta * x / (pz * ptt)
    return (x / (ca * ptt), ca * px - sa * pz, y - q * py, py, t + q * (1.0 / beta0 + pt), pt)


def _linear_kick(c, r21, r43):
    x, px, y, py, t, pt = c
    return (x, px + r21 * x, y, py + r43 * y, t, pt)


def _dipole_fringe(c, fint, hgap, k0, beta0):
    """MAD-NG dipole fringe (Forest's generating function with finite-gap terms).

    Implements the forward map of xtrack's ``DipoleFringe_track_single_particle``
    (default, non-PTC variant); exact identity at ``k0 = 0``.
    """
    x, px, y, py, t, pt = c
    fh = hgap * fint
    big = fh > _FSAD_THRESHOLD
    fsad = jnp.where(big, 1.0 / (72.0 * jnp.where(big, fh, 1.0)), 0.0)
    b0 = k0
    dpp = _momentum_sq(pt, beta0)
    relp2 = 1.0 / dpp
    relp = jnp.sqrt(relp2)
    tfac = -(1.0 / beta0 + pt)
    c2 = 2.0 * b0 * fh
    c3 = b0 * b0 * fsad * relp

    pz = jnp.sqrt(dpp - px * px - py * py)
    ipz = 1.0 / pz
    xp, yp = px * ipz, py * ipz
    xyp = xp * yp
    yp2 = 1.0 + yp * yp
    xp2 = xp * xp
    iyp2 = 1.0 / yp2
    u = xp * iyp2
    du_dxp = iyp2
    du_dyp = -2.0 * xyp * iyp2 * iyp2
    inv_den = 1.0 / (1.0 + u * u)
    fterm = (1.0 + xp2 * (1.0 + yp2)) * inv_den
    dfterm_dxp = (2.0 * xp * (1.0 + yp2) - 2.0 * u * du_dxp * fterm) * inv_den
    dfterm_dyp = (2.0 * xp2 * yp - 2.0 * u * du_dyp * fterm) * inv_den

    fi0 = jnp.arctan(u) - c2 * fterm * ipz
    cf = jnp.cos(fi0)
    co2 = b0 / (cf * cf)
    fi1 = co2 * (du_dxp * inv_den - c2 * dfterm_dxp * ipz)
    fi2 = co2 * (du_dyp * inv_den - c2 * dfterm_dyp * ipz)
    fi3 = co2 * c2 * fterm * ipz * ipz
    kx = fi1 * (1.0 + xp2) * ipz + fi2 * xyp * ipz - fi3 * xp
    ky = fi1 * xyp * ipz + fi2 * yp2 * ipz - fi3 * yp
    kz = tfac * ((fi1 * xp + fi2 * yp) * ipz * ipz - fi3 * ipz)

    yy = 2.0 * y / (1.0 + jnp.sqrt(1.0 - 2.0 * ky * y))
    yy2 = yy * yy
    return (
        x + 0.5 * kx * yy2,
        px,
        yy,
        py - (4.0 * c3 * yy2 * yy + b0 * jnp.tan(fi0) * yy),
        t + 0.5 * kz * yy2 + c3 * yy2 * yy2 * relp2 * tfac,
        pt,
    )


def _mult_fringe(c, k1, k2, direction, beta0):
    """MAD-NG multipole fringe of the quadrupole and sextupole components (forward map).

    ``direction`` is +1 at the entry face and -1 at the exit face. Mirrors xtrack's
    ``MultFringe_track_single_particle`` with ``min_order = 1`` and ``k3 = 0``.
    """
    x, px, y, py, t, pt = c
    fx = fy = fxx = fyy = fxy = fyx = 0.0
    # (order n, normalised strength k_n / n!): z^n terms of the field.
    for n, kn in ((1, k1), (2, 0.5 * k2)):
        # drx + i dix = (x + i y)^n,  rx + i ix = (x + i y)^(n + 1).
        if n == 1:
            drx, dix = x, y
        else:
            drx, dix = x * x - y * y, 2.0 * x * y
        rx, ix = drx * x - dix * y, drx * y + dix * x
        comp = n + 1.0  # xtrack's "component" = ii + 1 with ii = n
        nj = -direction / (4.0 * (comp + 1.0))
        nf = (comp + 2.0) / comp
        u, v = nj * kn * rx, nj * kn * ix
        du, dv = nj * kn * drx, nj * kn * dix
        dux, dvx, duy, dvy = comp * du, comp * dv, -comp * dv, comp * du
        fx = fx + u * x + nf * v * y
        fy = fy + u * y - nf * v * x
        fxx = fxx + dux * x + nf * dvx * y + u
        fyy = fyy + duy * y - nf * dvy * x + u
        fxy = fxy + duy * x + nf * (dvy * y + v)
        fyx = fyx + dux * y - nf * (dvx * x + v)
    rpp = 1.0 / jnp.sqrt(_momentum_sq(pt, beta0))
    a = 1.0 - fxx * rpp
    b = -fyx * rpp
    cc = -fxy * rpp
    d = 1.0 - fyy * rpp
    idet = 1.0 / (a * d - b * cc)
    npx = (d * px - b * py) * idet
    npy = (a * py - cc * px) * idet
    dt = (1.0 / beta0 + pt) * (npx * fx + npy * fy) * rpp * rpp * rpp
    return (x - fx * rpp, npx, y - fy * rpp, npy, t + dt, pt)


def _quad_wedge(c, theta, k1):
    """Thin kick of the quadrupole field over a wedge of angle ``theta`` (xtrack)."""
    x, px, y, py, t, pt = c
    return (
        x,
        px - k1 * x * x * theta + 0.5 * k1 * y * y * theta,
        y,
        py + k1 * x * y * theta,
        t,
        pt,
    )


def _wedge(c, theta, b1, beta0):
    """Exact map through a wedge of uniform dipole field ``b1`` [1/m], angle ``theta``.

    Same map as xtrack's ``Wedge_single_particle``; the vertical drift and path length
    ``(theta + D) / b1`` (``D`` the change of the momentum angle) are written without the
    division by ``b1``, so the map tends to the plain frame rotation as ``b1 -> 0``.
    """
    x, px, y, py, t, pt = c
    st, ct, s2t = jnp.sin(theta), jnp.cos(theta), jnp.sin(2.0 * theta)
    p2 = _momentum_sq(pt, beta0)
    pz = jnp.sqrt(p2 - px * px - py * py)
    # Momentum rotated into the new frame, before the field's contribution -b1 x sin(theta).
    p1 = px * ct + pz * st
    q1 = pz * ct - px * st
    npx = p1 - b1 * x * st
    npz = jnp.sqrt(p2 - npx * npx - py * py)
    nx = x * ct + (x * px * s2t + st * st * (2.0 * x * pz - b1 * x * x)) / (
        npz + q1
    )
    # theta + D = atan(b1 w), w = x sin(theta) (p1 (npx + p1) / (q1 + npz) + q1) / cos_g.
    cos_g = npz * q1 + npx * p1
    w = x * st * (p1 * (npx + p1) / (q1 + npz) + q1) / cos_g
    ang = w * atanc(b1 * w)  # (theta + D) / b1
    return (nx, npx, y + py * ang, py, t - ang * (1.0 / beta0 + pt), pt)


# ---------------------------------------------------------------------------------------
# Edge models.
# ---------------------------------------------------------------------------------------


def linear_edge_coefficients(k0, e, hgap, fint):
    """MAD-X / Xsuite linear edge: ``(r21, r43)`` [1/m] for ``px += r21 x, py += r43 y``.

    Args:
        k0: dipole strength (curvature of the bend) [1/m].
        e: pole-face angle [rad].
        hgap: half gap [m] (MAD-X ``hgap``).
        fint: fringe-field integral.
    """
    corr = 2.0 * k0 * hgap * fint
    se = jnp.sin(e)
    psi = corr / jnp.cos(e) * (1.0 + se * se)
    return k0 * jnp.tan(e), -k0 * jnp.tan(e - psi)


def linear_edge_matrix(k0, e, hgap, fint):
    """6x6 matrix of the linear edge (MAD-X ``dipedge`` / bend face ``rmatrix``)."""
    r21, r43 = linear_edge_coefficients(k0, e, hgap, fint)
    r21 = jnp.asarray(r21, dtype=float)
    return jnp.eye(6, dtype=r21.dtype).at[1, 0].set(r21).at[3, 2].set(r43)


def _unpack(x):
    return tuple(x[i] for i in range(6))


class EdgeModel(eqx.Module):
    """A model of a bend's pole faces: maps for the entry and the exit face.

    ``entry`` / ``exit`` take the 6-vector and the face parameters: ``k0`` [1/m],
    ``k1`` [1/m^2], ``k2`` [1/m^3], pole-face angle ``e`` [rad], half gap ``hgap`` [m],
    fringe integral ``fint``, and the reference ``beta0``.
    """

    def entry(self, x, k0, k1, k2, e, hgap, fint, beta0):
        raise NotImplementedError

    def exit(self, x, k0, k1, k2, e, hgap, fint, beta0):
        raise NotImplementedError

    def entry_inverse(self, x, *face):
        """Inverse of `entry` (same arguments after ``x``); fixed-point iterations by default."""
        return fixed_point_inverse(lambda z: self.entry(z, *face), x)

    def exit_inverse(self, x, *face):
        """Inverse of `exit`; fixed-point iterations by default."""
        return fixed_point_inverse(lambda z: self.exit(z, *face), x)

    def matrix(self, k0, k1, k2, e, hgap, fint, beta0, *, exit: bool = False):
        """First-order 6x6 map of one face, about the reference orbit."""
        face = self.exit if exit else self.entry
        return jax.jacfwd(lambda z: face(z, k0, k1, k2, e, hgap, fint, beta0))(jnp.zeros(6))


class NoEdge(EdgeModel):
    """No edge effect (Xsuite ``'suppressed'``)."""

    def entry(self, x, k0, k1, k2, e, hgap, fint, beta0):
        return x

    def exit(self, x, k0, k1, k2, e, hgap, fint, beta0):
        return x

    def matrix(self, k0, k1, k2, e, hgap, fint, beta0, *, exit: bool = False):
        return jnp.eye(6)


class LinearEdge(EdgeModel):
    """Linear edge focusing with the fringe-field correction (Xsuite ``'linear'``, MAD-X)."""

    def entry(self, x, k0, k1, k2, e, hgap, fint, beta0):
        r21, r43 = linear_edge_coefficients(k0, e, hgap, fint)
        return jnp.stack(_linear_kick(_unpack(x), r21, r43))

    exit = entry

    def entry_inverse(self, x, k0, k1, k2, e, hgap, fint, beta0):
        # the kicks depend on the positions alone, which they leave unchanged
        r21, r43 = linear_edge_coefficients(k0, e, hgap, fint)
        return jnp.stack(_linear_kick(_unpack(x), -r21, -r43))

    exit_inverse = entry_inverse

    def matrix(self, k0, k1, k2, e, hgap, fint, beta0, *, exit: bool = False):
        return linear_edge_matrix(k0, e, hgap, fint)


class FullEdge(EdgeModel):
    """Nonlinear edge: frame rotation, fringe fields and wedge (Xsuite ``'full'``).

    Attributes:
        multipole: include the quadrupole/sextupole fringe and the quadrupole wedge
            (Xsuite ``'full'``); False gives Xsuite's ``'dipole-only'`` and the map of
            ``xt.DipoleEdge(model='full')``.
    """

    multipole: bool = eqx.field(static=True, default=True)

    def entry(self, x, k0, k1, k2, e, hgap, fint, beta0):
        c = _y_rotation(_unpack(x), -e, beta0)
        c = _dipole_fringe(c, fint, hgap, k0, beta0)
        if self.multipole:
            c = _mult_fringe(c, k1, k2, 1.0, beta0)
            c = _quad_wedge(c, -e, k1)
        c = _wedge(c, -e, k0, beta0)
        return jnp.stack(c)

    def exit(self, x, k0, k1, k2, e, hgap, fint, beta0):
        c = _wedge(_unpack(x), -e, k0, beta0)
        if self.multipole:
            c = _quad_wedge(c, -e, k1)
            c = _mult_fringe(c, k1, k2, -1.0, beta0)
        c = _dipole_fringe(c, fint, hgap, -k0, beta0)
        c = _y_rotation(c, -e, beta0)
        return jnp.stack(c)


# Xsuite 0.118: Bend/RBend ``edge_entry_model = edge_exit_model = 'linear'`` and
# ``xt.DipoleEdge(model='linear')`` by default; ``line.configure_bend_model(edge='full')``
# switches both to the full model.
XSUITE_DEFAULT_EDGE = LinearEdge()
XSUITE_FULL_EDGE_MODEL = FullEdge()
# Element presets live with the elements (bend.py, dipedge.py); no element type is defined here.
XSUITE_DEFAULTS: dict = {}
XSUITE_FULL_EDGE: dict = {}
