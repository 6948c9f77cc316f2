"""``sincos``: sine and cosine of a float64 array that XLA vectorises on CPU.

XLA's CPU backend evaluates ``jnp.sin`` and ``jnp.cos`` in float64 one element at a time
(about 9-10 ns each on the development machine, against ~1 ns for a vectorised polynomial),
and every chromatic quadrupole or solenoid needs both for every particle. This version
reduces the argument by pi/2 (Cody-Waite: pi/2 split into three parts, the first two short
enough that ``q * part`` is exact) and evaluates the Taylor polynomials of sin and cos on
``|r| <= pi/4``, truncated where the next term is below 1e-19. Accuracy: within 2 ulp of
the correctly rounded values for ``|x| < 6e6`` (the reduction is exact there); beyond that
the error grows with ``|x|``. The derivative is exact: ``d sin = cos dx``, ``d cos = -sin dx``
with the values computed here.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import jax
import jax.numpy as jnp

__all__ = ["sincos"]

getcontext().prec = 60
_PI_OVER_2 = Decimal("3.14159265358979323846264338327950288419716939937510582097494") / 2


def _truncate(v: float, bits: int) -> float:
    """``v`` with its significand cut to ``bits`` bits (exact products with small integers)."""
    m, e = math.frexp(v)
    return math.ldexp(math.floor(m * 2.0**bits) / 2.0**bits, e)


_P1 = _truncate(float(_PI_OVER_2), 30)
_P2 = _truncate(float(_PI_OVER_2 - Decimal(_P1)), 30)
_P3 = float(_PI_OVER_2 - Decimal(_P1) - Decimal(_P2))
_TWO_OVER_PI = float(1 / _PI_OVER_2)
# sin r = r + r z sum_k S_k z^k, cos r = 1 + z sum_k C_k z^k, z = r^2 (Taylor coefficients)
_S = tuple((-1) ** (k + 1) / math.factorial(2 * k + 3) for k in range(8))
_C = tuple((-1) ** (k + 1) / math.factorial(2 * k + 2) for k in range(9))


def _poly(coeffs, z):
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = acc * z + c
    return acc


@jax.custom_jvp
def sincos(x):
    """``(sin(x), cos(x))`` for a float64 array ``x`` (see the module for the accuracy)."""
    x = jnp.asarray(x)
    q = jnp.round(x * _TWO_OVER_PI)
    r = ((x - q * _P1) - q * _P2) - q * _P3
    z = r * r
    s = r + r * z * _poly(_S, z)
    c = 1.0 + z * _poly(_C, z)
    k = q.astype(jnp.int32)
    swap = (k & 1) == 1
    sin_x = jnp.where(swap, c, s)
    cos_x = jnp.where(swap, s, c)
    sin_x = jnp.where((k & 2) == 2, -sin_x, sin_x)
    cos_x = jnp.where(((k + 1) & 2) == 2, -cos_x, cos_x)
    return sin_x, cos_x


@sincos.defjvp
def _sincos_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    s, c = sincos(x)
    return (s, c), (c * dx, -s * dx)
