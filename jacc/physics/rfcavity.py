"""RF cavity: thin energy kick, thick as drift-kick-drift.

Fields: ``l`` [m], ``voltage`` [V] (peak voltage seen by a particle of charge ``|q| e``),
``frequency`` [Hz], ``lag`` [units of 2 pi, MAD-X ``LAG``]. A particle with MAD-X time
coordinate ``t`` [m] (``t > 0`` ahead of the reference) receives

    pt += |q| voltage / p0c * sin(2 pi lag - 2 pi frequency t / c),

as MAD-X and Xsuite: ``lag = 0`` (or 0.5) is the zero crossing, the reference particle
gains ``|q| voltage sin(2 pi lag)`` [eV]. Only ``pt`` changes (``px, py`` kept), the
reference momentum does not. MAD-X ``VOLT`` is the energy gain in MV of the reference
charge: Xsuite's importer sets ``voltage = VOLT * 1e6 / |charge|``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from jacc.physics.base import DriftKick, ElementPhysics, Flow
from jacc.physics.drift import drift_matrix, exact_drift, expanded_drift
from jacc.physics.trig import sincos

__all__ = ["RFCavity", "RFCavityOff", "XSUITE_DEFAULTS", "without_kick"]

C_LIGHT = 299792458.0  # [m/s], exact
_TWO_PI = 2.0 * math.pi


class RFCavity(ElementPhysics):
    """RF cavity of length ``l`` [m] (0: thin). Fields: ``l``, ``voltage``, ``frequency``, ``lag``.

    Attributes:
        exact_drift: exact drifts around the kick if True, expanded drifts if False.
    """

    fields: ClassVar[tuple[str, ...]] = ("l", "voltage", "frequency", "lag")
    thick: ClassVar[bool] = True
    exact_drift: bool = eqx.field(static=True, default=False)

    def drift(self, p, x, frac, ref):
        step = exact_drift if self.exact_drift else expanded_drift
        return step(x, frac * p["l"], ref.beta0)

    def _amplitude(self, p, ref):
        """Kick amplitude [1] in pt and wave number [1/m]."""
        return abs(ref.charge) * p["voltage"] / ref.p0c, _TWO_PI / C_LIGHT * p["frequency"]

    def kick(self, p, x, frac, ref):
        amp, kw = self._amplitude(p, ref)
        x0, px, y0, py, t, pt = x
        return jnp.stack([x0, px, y0, py, t, pt + frac * amp * sincos(_TWO_PI * p["lag"] - kw * t)[0]])

    def matrix(self, p, ref):
        amp, kw = self._amplitude(p, ref)
        half = drift_matrix(0.5 * p["l"], ref.beta0, ref.gamma0)
        k = jnp.eye(6).at[5, 4].set(-amp * kw * jnp.cos(_TWO_PI * p["lag"]))
        return half @ k @ half

    def offset(self, p, ref):
        # The reference particle's energy gain, carried through the second half drift.
        amp, _ = self._amplitude(p, ref)
        dpt = amp * jnp.sin(_TWO_PI * p["lag"])
        dt = 0.5 * p["l"] / (ref.beta0 * ref.gamma0) ** 2 * dpt
        zero = jnp.zeros_like(dpt)
        return jnp.stack([zero, zero, zero, zero, dt, dpt])


class RFCavityOff(RFCavity):
    """`RFCavity` at zero voltage: its drift over the whole length (the kick is the identity)."""

    has_kick: ClassVar[bool] = False

    def kick(self, p, x, frac, ref):
        return x


def without_kick(physics, method):
    """``(physics, method)`` of a cavity whose voltage is known to be zero (4D optics), or
    the pair unchanged when it is not the drift-kick model of `RFCavity` (two half drifts
    around a zero kick are one drift: the same map to rounding)."""
    if type(physics) is RFCavity and isinstance(method, DriftKick):
        return RFCavityOff(exact_drift=physics.exact_drift), Flow()
    return physics, method


# Xsuite 0.118 ``Cavity`` defaults: model "drift-kick-drift-expanded" (default_model 6),
# integrator "uniform", num_kicks 0 = auto = 1; with l = 0 the drifts vanish (thin kick).
# The kick changes pt only (no XTRACK_CAVITY_PRESERVE_ANGLE); charge enters as |q0|.
XSUITE_DEFAULTS = {"RFCavity": (RFCavity(exact_drift=False), DriftKick(order=2, slices=1))}
