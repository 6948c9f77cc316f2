"""Host side of a stage: batched passes and central finite-difference vector-Jacobian products.

``track(values (p,), x (m, 6)) -> (m, 6)`` is the code's pass (NaN rows for lost
particles). The functions here take the arrays a ``jax.pure_callback`` with
``vmap_method="expand_dims"`` hands over: any number of leading batch axes (size 1 where an
argument is not batched), broadcast against each other. Batch members that share parameter
values are tracked together, in one call of the code.

Finite differences: parameter ``i`` moves by ``h_i = max(rel |v_i|, abs)`` (or a step given
by name), each coordinate by ``max(rel |x|, abs)``; the
divisor is the difference of the two representable points actually tracked. Particles are
independent, so one coordinate of every particle moves at once: the coordinate part of the
VJP costs one pass of 12 n particles, the parameter part 2 p passes of n particles. A
particle that is lost in either point of a difference contributes nothing (its derivative
is not defined there).
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import numpy as np

__all__ = ["FDSteps", "host_forward", "host_vjp"]

Track = Callable[[np.ndarray, np.ndarray], np.ndarray]


class FDSteps(NamedTuple):
    """Finite-difference steps: ``max(rel |v|, abs)``, or ``by_name[name]`` for a parameter."""

    rel: float
    abs: float
    by_name: Mapping[str, float]


def _flat(lead, a, tail):
    return np.broadcast_to(a, lead + tail).reshape((int(np.prod(lead, dtype=np.int64)),) + tail)


def _groups(v: np.ndarray):
    """``(values, member indices)`` for each distinct row of ``v`` (B, p)."""
    if v.shape[0] == 1:
        yield v[0], np.zeros(1, dtype=np.intp)
        return
    uniq, inverse = np.unique(v, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for g, u in enumerate(uniq):
        yield u, np.flatnonzero(inverse == g)


def host_forward(track: Track, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(*lead, n, 6)`` coordinates after the pass, for ``values (*lead1, p)`` and
    ``x (*lead2, n, 6)``."""
    values, x = np.asarray(values, np.float64), np.asarray(x, np.float64)
    lead = np.broadcast_shapes(values.shape[:-1], x.shape[:-2])
    n = x.shape[-2]
    v, xb = _flat(lead, values, values.shape[-1:]), _flat(lead, x, (n, 6))
    out = np.empty(xb.shape)
    for u, idx in _groups(v):
        out[idx] = track(u, xb[idx].reshape(-1, 6)).reshape(len(idx), n, 6)
    return out.reshape(lead + (n, 6))


def _steps(a: np.ndarray, rel: float, abs_: float) -> np.ndarray:
    return np.maximum(rel * np.abs(a), abs_)


def _dot(ybar: np.ndarray, dy: np.ndarray, dv) -> np.ndarray:
    """``<ybar, dy> / dv`` per particle, 0 where ``dy`` is not finite (a lost particle)."""
    ok = np.isfinite(dy).all(axis=-1)
    return np.where(ok, np.sum(ybar * np.where(np.isfinite(dy), dy, 0.0), axis=-1) / dv, 0.0)


def _coord_vjp(track: Track, u, x, ybar, rel: float, abs_: float) -> np.ndarray:
    """Cotangent of the coordinates ``x (k, n, 6)``: 12 points per particle, one pass."""
    h = _steps(x, rel, abs_)
    points = []
    for j in range(6):
        for sign in (1.0, -1.0):
            p = x.copy()
            p[..., j] = x[..., j] + sign * h[..., j]
            points.append(p)
    pts = np.stack(points)
    y = track(u, pts.reshape(-1, 6)).reshape(pts.shape)
    xbar = np.empty(x.shape)
    for j in range(6):
        dv = pts[2 * j][..., j] - pts[2 * j + 1][..., j]
        xbar[..., j] = _dot(ybar, y[2 * j] - y[2 * j + 1], dv)
    return xbar


def _param_vjp(track: Track, u, x, ybar, names, steps: FDSteps) -> np.ndarray:
    """Cotangent of the parameters for members ``x (k, n, 6)``: two passes per parameter."""
    vbar = np.empty((x.shape[0], u.shape[0]))
    flat = x.reshape(-1, 6)
    for i, name in enumerate(names):
        h = steps.by_name.get(name, max(steps.rel * abs(u[i]), steps.abs))
        up, um = u.copy(), u.copy()
        up[i] += h
        um[i] -= h
        dy = track(up, flat).reshape(x.shape) - track(um, flat).reshape(x.shape)
        vbar[:, i] = _dot(ybar, dy, up[i] - um[i]).sum(axis=-1)
    return vbar


def host_vjp(track: Track, names, steps: FDSteps, values, x, ybar) -> tuple[np.ndarray, np.ndarray]:
    """``(values cotangent (*lead, p), x cotangent (*lead, n, 6))`` of a pass for the output
    cotangent ``ybar``, by central differences."""
    values, x, ybar = (np.asarray(a, np.float64) for a in (values, x, ybar))
    lead = np.broadcast_shapes(values.shape[:-1], x.shape[:-2], ybar.shape[:-2])
    p, n = values.shape[-1], x.shape[-2]
    v, xb, yb = _flat(lead, values, (p,)), _flat(lead, x, (n, 6)), _flat(lead, ybar, (n, 6))
    vbar, xbar = np.empty(v.shape), np.empty(xb.shape)
    for u, idx in _groups(v):
        xbar[idx] = _coord_vjp(track, u, xb[idx], yb[idx], steps.rel, steps.abs)
        vbar[idx] = _param_vjp(track, u, xb[idx], yb[idx], names, steps)
    return vbar.reshape(lead + (p,)), xbar.reshape(lead + (n, 6))
