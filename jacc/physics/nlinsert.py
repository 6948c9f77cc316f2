"""Thick Danilov-Nagaitsev insert: the continuum limit of the thin lens slices (diffrax).

A drift whose beta function (equal in both planes) is ``beta(s) = beta_c + (s - s_c)^2 /
beta_c``, ``s`` from the element entrance and ``s_c`` the waist, carries the potential of
thin `NonlinearLens` slices in the limit of infinitely many: per metre, ``knll -> t c^2 /
beta(s)`` and ``cnll = c sqrt(beta(s))``. The Hamiltonian (MAD-X canonical coordinates) is

    H = K(px, py, pt) + V(x, y, s),

``K`` the element's drift (expanded, as the Xsuite ``Drift``, or exact) and ``-grad V`` the
lens kick per metre of `jacc.physics.nllens` (not scaled with momentum, as the thin lens).
Positions ``(x, y, t)`` move with the momenta only and momenta ``(px, py, pt)`` with the
positions only, so diffrax's symplectic `SemiImplicitEuler` applies: each of its fixed steps
is an exact drift and an exact kick. Started half a drift back and closed with half a drift,
with kicks at mid-step ``s``, the steps compose into leapfrog: second order in the step,
symmetric (the map integrated backwards is its inverse to rounding), symplectic. ``n``
steps reproduce ``n`` thin slices at the centres of equal pieces with drifts between them.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from jacc.physics.base import ElementPhysics, Flow
from jacc.physics.drift import exact_drift, expanded_drift
from jacc.physics.nllens import nonlinear_lens_kick

__all__ = ["NonlinearInsertField", "XSUITE_DEFAULTS", "insert_force", "insert_flow"]


def insert_force(x, y, s, t, c, beta_c, s_c):
    """``(dpx/ds, dpy/ds)`` [1/m] of the continuous insert at ``(x, y)`` [m] and ``s`` [m].

    Args:
        t: dimensionless strength; c: scale [m^(1/2)]; beta_c: beta at the waist [m];
        s_c: position of the waist from the element entrance [m].
    """
    beta = beta_c + (s - s_c) ** 2 / beta_c
    return nonlinear_lens_kick(x, y, t * c * c / beta, c * jnp.sqrt(beta))


def insert_flow(v, p, n_steps: int, beta0: float, exact: bool = False, backwards: bool = False):
    """One particle's 6-vector ``v`` through the insert of parameters ``p`` (``l``, ``t``,
    ``c``, ``beta_c``, ``s_c``) in ``n_steps`` leapfrog steps; ``backwards``: the inverse map.
    """
    import diffrax  # an import of ~0.5 s, paid by lattices that hold a thick insert

    drift = exact_drift if exact else expanded_drift
    length = p["l"]
    h = (-length if backwards else length) / n_steps
    s_start = length if backwards else 0.0

    # diffrax runs over the step count sigma (0 .. n_steps, unit steps, all static: the
    # length may be a traced parameter, and traced bounds would add runtime checks, host
    # callbacks that programs stored across processes cannot hold); s = s_start + sigma h.
    def velocity(sigma, mom, args):
        # h d(x, y, t)/ds: the drift over h from the origin
        w = drift(jnp.stack([0.0, mom[0], 0.0, mom[1], 0.0, mom[2]]), h, beta0)
        return jnp.stack([w[0], w[2], w[4]])

    def force(sigma, q, args):
        # diffrax kicks at the step's start with the drifted position: that of mid-step
        fx, fy = insert_force(q[0], q[1], s_start + (sigma + 0.5) * h, p["t"], p["c"], p["beta_c"], p["s_c"])
        return jnp.stack([h * fx, h * fy, jnp.zeros_like(fx)])

    def half(u, sign):
        return drift(u, sign * 0.5 * h, beta0)

    u = half(v, -1.0)
    q0, m0 = jnp.stack([u[0], u[2], u[4]]), jnp.stack([u[1], u[3], u[5]])
    sol = diffrax.diffeqsolve(
        (diffrax.ODETerm(velocity), diffrax.ODETerm(force)), diffrax.SemiImplicitEuler(),
        0.0, float(n_steps), 1.0, (q0, m0), saveat=diffrax.SaveAt(t1=True), max_steps=n_steps,
        adjoint=diffrax.DirectAdjoint(),  # forward mode (optics) and reverse mode
        throw=False,  # fixed steps cannot fail (and a check would be a host callback)
    )
    q, m = sol.ys[0][-1], sol.ys[1][-1]
    return half(jnp.stack([q[0], m[0], q[1], m[1], q[2], m[2]]), 1.0)


class NonlinearInsertField(ElementPhysics):
    """Thick DN insert. Fields: ``l`` [m], ``t``, ``c`` [m^(1/2)], ``beta_c`` [m], ``s_c`` [m].

    Attributes:
        n_steps: fixed leapfrog steps over the element (error ~ 1 / n_steps^2); set from the
            description's ``n_steps``.
        exact: exact square-root drift if True, expanded drift (as the Xsuite ``Drift`` the
            thin slices sit between) if False.
    """

    fields: ClassVar[tuple[str, ...]] = ("l", "t", "c", "beta_c", "s_c")
    thick: ClassVar[bool] = True
    has_kick: ClassVar[bool] = False
    n_steps: int = eqx.field(static=True, default=64)
    exact: bool = eqx.field(static=True, default=False)

    def drift(self, p, x, frac, ref):
        # ``frac`` is +1 (whole body forwards) or -1 (the inverse map): the potential depends
        # on s, so only whole-body flows are meaningful.
        if abs(abs(frac) - 1.0) > 0.0:
            raise ValueError("NonlinearInsertField integrates the whole body: use the Flow() method")
        return insert_flow(x, p, self.n_steps, ref.beta0, self.exact, backwards=frac < 0)


XSUITE_DEFAULTS = {"NonlinearInsertField": (NonlinearInsertField(), Flow())}
