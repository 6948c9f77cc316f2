"""The two invariants of the Danilov-Nagaitsev (DN) Hamiltonian in normalised coordinates.

With ``(x, px, y, py)`` normalised (``x_N = x / sqrt(beta)``, ``p_N = (alpha x + beta px) /
sqrt(beta)``, units m^(1/2)) and ``c`` [m^(1/2)] the insert's scale, elliptic coordinates
``xi = (r1 + r2) / (2c)``, ``eta = (r2 - r1) / (2c)`` with ``r1,2 = |(x, y) -+ (c, 0)|`` (so
``x = c xi eta``, ``xi >= 1``, ``|eta| <= 1``) separate the potential of
`jacc.lattices.nonlinear_insert`:

    H = (px^2 + py^2 + x^2 + y^2) / 2 + t c^2 (g(eta) - f(xi)) / (xi^2 - eta^2),
        f(xi) = xi sqrt(xi^2 - 1) acosh(xi),   g(eta) = eta sqrt(1 - eta^2) asin(eta),

and Liouville's construction for a potential ``(F(xi) + G(eta)) / (xi^2 - eta^2)`` gives the
second invariant

    I = (x py - y px)^2 + c^2 px^2 + 2 c^2 (eta^2 F(xi) + xi^2 G(eta)) / (xi^2 - eta^2),

here with ``F = c^2 xi^2 (xi^2 - 1) / 2 - t c^2 f``, ``G = c^2 eta^2 (1 - eta^2) / 2 + t c^2 g``
(the harmonic part contributes ``c^2 x^2``), i.e.

    I = (x py - y px)^2 + c^2 (px^2 + x^2) + 2 t c^4 (xi^2 g(eta) - eta^2 f(xi)) / (xi^2 - eta^2).

Both are in m (H) and m^2 (I); the tests check ``{H, I} = 0`` by automatic differentiation.
"""

from __future__ import annotations

import jax.numpy as jnp

from jacc.physics.nllens import _asinhc

__all__ = ["dn_elliptic", "dn_hamiltonian", "dn_second_invariant"]


def dn_elliptic(x, y, c):
    """``(xi, eta)`` of the normalised position ``(x, y)`` [m^(1/2)] for scale ``c`` [m^(1/2)]."""
    r1 = jnp.sqrt((x - c) ** 2 + y * y)
    r2 = jnp.sqrt((x + c) ** 2 + y * y)
    return 0.5 * (r1 + r2) / c, 0.5 * (r2 - r1) / c


def _f_g(xi, eta):
    w = xi * xi - 1.0
    f = xi * w * _asinhc(w)  # xi sqrt(w) acosh(xi), smooth through w = 0
    one_m = jnp.clip(1.0 - eta * eta, 0.0, None)
    g = eta * jnp.sqrt(one_m) * jnp.arcsin(jnp.clip(eta, -1.0, 1.0))
    return f, g


def dn_hamiltonian(z, t, c):
    """``H`` [m] at the normalised point ``z = (x, px, y, py)`` (see the module docstring)."""
    x, px, y, py = z[0], z[1], z[2], z[3]
    xi, eta = dn_elliptic(x, y, c)
    f, g = _f_g(xi, eta)
    return 0.5 * (px * px + py * py + x * x + y * y) + t * c * c * (g - f) / (xi * xi - eta * eta)


def dn_second_invariant(z, t, c):
    """``I`` [m^2] at the normalised point ``z = (x, px, y, py)`` (see the module docstring)."""
    x, px, y, py = z[0], z[1], z[2], z[3]
    xi, eta = dn_elliptic(x, y, c)
    f, g = _f_g(xi, eta)
    c2 = c * c
    nl = 2.0 * t * c2 * c2 * (xi * xi * g - eta * eta * f) / (xi * xi - eta * eta)
    return (x * py - y * px) ** 2 + c2 * (px * px + x * x) + nl
