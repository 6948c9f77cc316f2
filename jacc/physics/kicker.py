"""Orbit correctors (HKicker, VKicker, HVCorrector), thin or thick.

Fields: ``l`` [m], ``xangle``, ``yangle`` [rad]: MAD-X ``hkick``/``vkick`` (``kick`` of an
``hkicker``/``vkicker``), i.e. ``px += xangle`` and ``py += yangle`` for any momentum (the
kick is on the canonical momentum, as in MAD-X and Xsuite). A thick corrector spreads the
kick over its length between drifts; ``l = 0`` gives the thin kick.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from jacc.physics.base import DriftKick, ElementPhysics
from jacc.physics.drift import drift_matrix, exact_drift, expanded_drift

__all__ = ["Kicker", "ThinKicker", "XSUITE_DEFAULTS"]


class Kicker(ElementPhysics):
    """Dipole corrector kicking ``(xangle, yangle)`` [rad] over a length ``l`` [m] (may be 0).

    Attributes:
        exact_drift: exact drifts around the kicks if True, expanded drifts if False.
    """

    fields: ClassVar[tuple[str, ...]] = ("l", "xangle", "yangle")
    thick: ClassVar[bool] = True
    exact_drift: bool = eqx.field(static=True, default=False)

    def drift(self, p, x, frac, ref):
        step = exact_drift if self.exact_drift else expanded_drift
        return step(x, frac * p["l"], ref.beta0)

    def kick(self, p, x, frac, ref):
        x0, px, y0, py, t, pt = x
        return jnp.stack([x0, px + frac * p["xangle"], y0, py + frac * p["yangle"], t, pt])

    def matrix(self, p, ref):
        return drift_matrix(p["l"], ref.beta0, ref.gamma0)

    def offset(self, p, ref):
        # First order in the kick: any symmetric split puts its centroid at l/2.
        half = 0.5 * p["l"]
        xa, ya = p["xangle"], p["yangle"]
        zero = jnp.zeros_like(xa)
        return jnp.stack([half * xa, xa, half * ya, ya, zero, zero])

    def simplify(self, method, constants):
        # A zero-length corrector's drifts are the identity: its map is the kick alone
        # (a structural fact, like Xsuite's thin/thick distinction, not a value that an
        # operator changes).
        if constants.get("l") == 0.0 and isinstance(method, DriftKick):
            return ThinKicker(exact_drift=self.exact_drift), method
        return self, method


class ThinKicker(Kicker):
    """`Kicker` of zero length: the kick alone (its drifts would be the identity)."""

    def drift(self, p, x, frac, ref):
        return x

    def simplify(self, method, constants):
        return self, method


# Xsuite 0.118 importer: (h/v)kicker and kicker become ``Multipole(knl=[-hkick],
# ksl=[vkick], length=l, isthick=l>0)`` with hxl = 0. Thin: kick only. Thick: model
# "drift-kick-drift-expanded", integrator "uniform", one kick (auto) -- expanded drift l/2,
# kick, expanded drift l/2 (a single expanded drift if both kicks are zero: same map).
_DEFAULT = (Kicker(exact_drift=False), DriftKick(order=2, slices=1))
XSUITE_DEFAULTS = {"HKicker": _DEFAULT, "VKicker": _DEFAULT, "HVCorrector": _DEFAULT}
