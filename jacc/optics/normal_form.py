"""Linear normal form of a one-turn matrix: ``M = W R W^-1`` with ``R`` block rotations.

Two routes, both differentiable (jvp and grad) and jittable:

* 4x4 (transverse, 4D optics): the analytic decoupling of Sagan and Rubin ("Linear analysis
  of coupled lattices", PRSTAB 2, 074001, 1999). ``M = V U V^-1`` with
  ``V = [[g I, C], [-C+, g I]]`` symplectic and ``U`` block diagonal; each block of ``U`` is
  then put in Courant-Snyder form. No eigen-solver, so uncoupled lattices are the special
  case ``C = 0, g = 1`` with smooth derivatives.
* 6x6 (6D optics with RF): eigenvalues from ``jnp.linalg.eig`` (whose eigenvalue derivatives
  JAX provides), eigenvectors from a linear solve of ``(M - lambda I) v = 0`` with one
  component fixed (differentiable, unlike the eigenvectors of ``eig``).

The columns of ``W`` are pairs ``(Re v_k, Im v_k)`` of the mode eigenvectors, normalised by
``Re v^T S Im v = 1`` (``S`` the symplectic form), the convention of xtrack, so the mode
beta functions ``betx1 = W00^2 + W01^2, bety1 = W20^2 + W21^2, betx2 = W02^2 + W03^2,
bety2 = W22^2 + W23^2`` are xtrack's. Mode 1 is the mostly horizontal mode, mode 2 the mostly
vertical one, mode 3 the longitudinal one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

TWO_PI = 2.0 * jnp.pi


def symplectic_form(n: int):
    """The ``2n x 2n`` symplectic form ``S`` (blocks ``[[0, 1], [-1, 0]]``)."""
    s2 = jnp.array([[0.0, 1.0], [-1.0, 0.0]])
    return jnp.kron(jnp.eye(n), s2)


def _sbar(m):
    """Symplectic conjugate of a 2x2 block: ``S m^T S^T``."""
    return jnp.array([[m[1, 1], -m[0, 1]], [-m[1, 0], m[0, 0]]])


class NormalForm(NamedTuple):
    """``M = W R W^-1``.

    Attributes:
        w: the normalising matrix (columns: mode eigenvector real and imaginary parts).
        tunes: fractional tune of each mode, in [0, 1).
        stable: all modes stable (``|cos mu| < 1`` and a real decoupling).
    """

    w: jax.Array
    tunes: jax.Array
    stable: jax.Array


def courant_snyder_2x2(m):
    """``(beta, alpha, tune, stable)`` of a 2x2 symplectic block (tune in [0, 1)).

    Unstable blocks give finite values (``cos mu`` is clipped) and ``stable = False``,
    so no NaN reaches results or gradients.
    """
    cosmu = 0.5 * (m[0, 0] + m[1, 1])
    stable = (jnp.abs(cosmu) < 1.0) & (m[0, 1] != 0.0)
    c = jnp.clip(cosmu, -1.0 + 1e-12, 1.0 - 1e-12)
    sign = jnp.where(m[0, 1] < 0, -1.0, 1.0)
    sinmu = sign * jnp.sqrt(1.0 - c * c)
    beta = m[0, 1] / sinmu
    beta = jnp.where(stable, beta, jnp.abs(beta) + 1e-300)
    alpha = (m[0, 0] - m[1, 1]) / (2.0 * sinmu)
    mu = jnp.arctan2(sinmu, c)
    tune = jnp.where(mu < 0, mu + TWO_PI, mu) / TWO_PI
    return beta, alpha, tune, stable


def _cs_inverse_basis(beta, alpha):
    """``G^-1 = [[sqrt(beta), 0], [-alpha/sqrt(beta), 1/sqrt(beta)]]`` (columns: W of a plane)."""
    sb = jnp.sqrt(beta)
    return jnp.array([[sb, 0.0], [-alpha / sb, 1.0 / sb]])


def normal_form_4d(m) -> NormalForm:
    """Normal form of a 4x4 transverse one-turn matrix by the Sagan-Rubin decoupling.

    The sign of ``tr(A - D)`` decides which decoupled block is mode 1 (the mostly
    horizontal one); the decoupling exists while ``tr(A - D)^2 + 4 det(B + C+) > 0``
    (away from the difference resonance), else ``stable`` is False.
    """
    a, b, c, d = m[:2, :2], m[:2, 2:], m[2:, :2], m[2:, 2:]
    h = b + _sbar(c)
    t = jnp.trace(a) - jnp.trace(d)
    deth = jnp.linalg.det(h)
    disc = t * t + 4.0 * deth
    decouplable = disc > 0
    root = jnp.sqrt(jnp.where(decouplable, disc, 1.0))
    sgn = jnp.where(t < 0, -1.0, 1.0)
    ratio = jnp.abs(t) / root  # above 1 when det(H) < 0: then g > 1 and det(C) < 0
    g = jnp.sqrt(0.5 + 0.5 * ratio)
    cc = -h * sgn / (g * root)
    eye = jnp.eye(2)
    v = jnp.block([[g * eye, cc], [-_sbar(cc), g * eye]])
    v_inv = jnp.block([[g * eye, -cc], [_sbar(cc), g * eye]])
    u = v_inv @ m @ v
    b1, a1, q1, s1 = courant_snyder_2x2(u[:2, :2])
    b2, a2, q2, s2 = courant_snyder_2x2(u[2:, 2:])
    z = jnp.zeros((2, 2))
    ginv = jnp.block([[_cs_inverse_basis(b1, a1), z], [z, _cs_inverse_basis(b2, a2)]])
    return NormalForm(v @ ginv, jnp.stack([q1, q2]), s1 & s2 & decouplable)


def _eigvec_fixed(m, lam, k):
    """Eigenvector of ``m`` for eigenvalue ``lam`` with component ``k`` set to 1.

    Solves the other rows of ``(m - lam I) v = 0``: differentiable in ``m`` and ``lam``.
    """
    n = m.shape[0]
    a = m.astype(lam.dtype) - lam * jnp.eye(n, dtype=lam.dtype)
    others = jnp.array([i for i in range(n) if i != k])
    sub = a[others][:, others]
    rhs = -a[others, k]
    rest = jnp.linalg.solve(sub, rhs)
    v = jnp.zeros(n, dtype=lam.dtype).at[others].set(rest).at[k].set(1.0)
    return v


def _mode_columns(v, s):
    """Real normalised columns ``(a, b)`` of an eigenvector, with ``a^T S b = 1``.

    Picks the orientation (``v`` or its conjugate, returned as ``sign`` = +1 or -1) that
    makes ``a^T S b`` positive.
    """
    a, b = jnp.real(v), jnp.imag(v)
    n2 = a @ s @ b
    sign = jnp.where(n2 < 0, -1.0, 1.0)
    norm = jnp.sqrt(jnp.abs(n2))
    return a / norm, sign * b / norm, sign


def normal_form_6d(m) -> NormalForm:
    """Normal form of a 6x6 one-turn matrix (coupled, with RF) by eigenvectors.

    Modes are assigned like xtrack: the longitudinal mode has the largest ``pt``
    component, the vertical one the largest ``y`` component of the two others.
    """
    s = symplectic_form(3)
    lam = jnp.linalg.eigvals(m)
    # assignment from eigenvectors of the frozen matrix (a discrete choice: no derivative)
    _, vecs = jnp.linalg.eig(lax.stop_gradient(m))
    upper = jnp.imag(lam) >= 0  # one eigenvalue of each conjugate pair
    pt_w = jnp.where(upper, jnp.abs(vecs[5]), -1.0)
    i3 = jnp.argmax(pt_w)
    y_w = jnp.where(upper & (jnp.arange(6) != i3), jnp.abs(vecs[2]) / (jnp.abs(vecs[0]) + jnp.abs(vecs[2])), -1.0)
    i2 = jnp.argmax(y_w)
    rest = upper & (jnp.arange(6) != i3) & (jnp.arange(6) != i2)
    i1 = jnp.argmax(rest)
    cols, tunes = [], []
    for idx, k in ((i1, 0), (i2, 2), (i3, 4)):
        lk = lam[idx]
        v = _eigvec_fixed(m, lk, k)
        a, b, sign = _mode_columns(v, s)
        # M (a + i b) = e^{i mu} (a + i b) for R = [[cos, sin], [-sin, cos]]: when the
        # conjugate is the positively oriented vector, its eigenvalue is conj(lambda)
        mu = sign * jnp.angle(lk)
        cols += [a, b]
        tunes.append(jnp.mod(mu / TWO_PI, 1.0))
    w = jnp.stack(cols, axis=1)
    stable = jnp.all(jnp.abs(jnp.abs(lam) - 1.0) < 1e-6)
    return NormalForm(w, jnp.stack(tunes), stable)


def cs_gauge(w):
    """Rotate each mode's column pair so that ``W[2k, 2k+1] = 0`` (Courant-Snyder gauge)."""
    n = w.shape[-1] // 2
    cols = []
    for k in range(n):
        c0, c1 = w[..., :, 2 * k], w[..., :, 2 * k + 1]
        phi = jnp.arctan2(w[..., 2 * k, 2 * k + 1], w[..., 2 * k, 2 * k])[..., None]
        cols += [c0 * jnp.cos(phi) + c1 * jnp.sin(phi), c1 * jnp.cos(phi) - c0 * jnp.sin(phi)]
    return jnp.stack(cols, axis=-1)


