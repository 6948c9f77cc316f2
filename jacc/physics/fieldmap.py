"""Field-map element: a solenoid-like on-axis field profile integrated numerically (diffrax).

The element's on-axis longitudinal field ``bz(z)`` [T], sampled at ``z`` [m] from the
entrance and interpolated linearly, gives ``k(s) = q Bz(s) c / p0c`` [1/m] (MAD-X ``ks``
with the charge sign). In the paraxial-vector-potential approximation
``A = B_z(s) (-y, x, 0) / 2`` the exact Hamiltonian (MAD-X canonical coordinates) is

    H = pt / beta0 - sqrt((1 + delta)^2 - (px + k y / 2)^2 - (py - k x / 2)^2),

the same convention as the `Solenoid` element, whose map is reproduced for a uniform field.
Canonical momenta are continuous where the field starts and stops (the vector potential
carries the fringe).

Integration: diffrax's 8th-order Dormand-Prince with an adaptive step (``rtol``/``atol``):
not a symplectic scheme, so symplecticity holds to the stated tolerance (about 1e-11 for
the defaults), and the inverse map integrates the same equations backwards.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import scipy.constants as const

from jacc.physics.base import ElementPhysics, Flow

__all__ = ["FieldMap", "XSUITE_DEFAULTS"]


def _rhs(s, y, args):
    z, kz, beta0 = args
    x, px, yy, py, t, pt = y
    k = jnp.interp(s, z, kz)
    ux, uy = px + 0.5 * k * yy, py - 0.5 * k * x
    opd2 = 1.0 + 2.0 * pt / beta0 + pt * pt
    inv_pz = 1.0 / jnp.sqrt(opd2 - ux * ux - uy * uy)
    return jnp.stack([
        ux * inv_pz,
        0.5 * k * uy * inv_pz,
        uy * inv_pz,
        -0.5 * k * ux * inv_pz,
        1.0 / beta0 - (1.0 / beta0 + pt) * inv_pz,
        jnp.zeros_like(pt),
    ])


class FieldMap(ElementPhysics):
    """On-axis solenoid field map. Fields: ``l`` [m], ``z`` [m], ``bz`` [T] (vectors).

    Attributes:
        rtol, atol: tolerances of the adaptive integrator (relative, absolute [m, rad]).
        max_steps: step budget of the integrator.
    """

    fields: ClassVar[tuple[str, ...]] = ("l", "z", "bz")
    thick: ClassVar[bool] = True
    has_kick: ClassVar[bool] = False
    rtol: float = eqx.field(static=True, default=1e-12)
    atol: float = eqx.field(static=True, default=1e-15)
    max_steps: int = eqx.field(static=True, default=4096)

    def drift(self, p, x, frac, ref):
        # ``frac`` is +1 (whole body forwards) or -1 (backwards, the inverse map): the field
        # depends on s, so only whole-body flows are meaningful.
        if abs(abs(frac) - 1.0) > 0.0:
            raise ValueError("FieldMap integrates the whole body: use the Flow() method")
        length = p["l"]
        kz = p["bz"] * (ref.charge * const.c / ref.p0c)
        t0, t1 = (0.0, length) if frac > 0 else (length, 0.0)
        import diffrax  # an import of ~0.5 s, paid by lattices that hold a field map

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(_rhs), diffrax.Dopri8(), t0=t0, t1=t1, dt0=None, y0=x,
            args=(p["z"], kz, ref.beta0),
            # steps end on the sample points, where the interpolated field has kinks: without
            # that, derivatives through the adaptive steps are wrong by percents
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol,
                                                      jump_ts=p["z"]),
            max_steps=self.max_steps, saveat=diffrax.SaveAt(t1=True),
            adjoint=diffrax.DirectAdjoint(),  # both forward (optics) and reverse mode
        )
        return sol.ys[-1]


XSUITE_DEFAULTS = {"FieldMap": (FieldMap(), Flow())}
