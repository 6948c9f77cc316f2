"""Step functions: one scan step (one element) for one particle and for a batch.

A step reads its parameters from a row of the table (layout given by its `KernelSpec`),
applies misalignment transforms around the element's model, and checks its aperture.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jacc.physics.aperture import inside_circle, inside_ellipse, inside_rectangle
from jacc.physics.base import Method, Reference
from jacc.physics.misalign import misalign_entry, misalign_exit

from .compiler import KernelSpec


def _unpack(ks: KernelSpec, prow):
    p, c = {}, 0
    for f, n in ks.layout:
        p[f] = prow[c] if n == 1 else prow[c:c + n]
        c += n
    return p, c


def _rbend_as_sbend(p):
    from jacc.physics.bend import rbend_to_sbend

    p = dict(p)
    p["l"], p["e1"], p["e2"] = rbend_to_sbend(p["l"], p["angle"], p["e1"], p["e2"])
    return p


# Element types whose description differs from what their physics reads.
_PREPARE = {"RBend": _rbend_as_sbend}


def make_single(ks: KernelSpec, ref: Reference):
    """``f(prow, v) -> (v_out, inside)`` for one particle (6-vector)."""
    prepare = _PREPARE.get(ks.kind)

    def single(prow, v):
        p, c = _unpack(ks, prow)
        inside = jnp.asarray(True)
        if ks.aperture is not None:
            a, b = prow[c + 4 * ks.misaligned], prow[c + 4 * ks.misaligned + 1]
            inside = _INSIDE[ks.aperture](v, a, b)
        if ks.physics is None:
            return v, inside
        if prepare is not None:
            p = prepare(p)
        if ks.misaligned:
            dx, dy, tilt = prow[c], prow[c + 1], prow[c + 2] + prow[c + 3]
            v = misalign_entry(v, dx, dy, tilt)
        v = ks.method(ks.physics, p, v, ref)
        if ks.misaligned:
            v = misalign_exit(v, dx, dy, tilt)
        return v, inside

    return single


_INSIDE = {"rectangle": inside_rectangle, "ellipse": inside_ellipse,
           "circle": lambda v, a, b: inside_circle(v, a)}


def make_single_inverse(ks: KernelSpec, ref: Reference):
    """``f(prow, v) -> v_in``: the inverse of `make_single`'s map (apertures ignored)."""
    prepare = _PREPARE.get(ks.kind)

    def single_inverse(prow, v):
        if ks.physics is None:
            return v
        p, c = _unpack(ks, prow)
        if prepare is not None:
            p = prepare(p)
        if ks.misaligned:
            dx, dy, tilt = prow[c], prow[c + 1], prow[c + 2] + prow[c + 3]
            v = misalign_entry(v, dx, dy, tilt)
        v = ks.method.inverse(ks.physics, p, v, ref)
        if ks.misaligned:
            v = misalign_exit(v, dx, dy, tilt)
        return v

    return single_inverse


def invertible(ks: KernelSpec) -> bool:
    """Whether a step can be inverted exactly (its method composes flows symmetrically)."""
    if ks.physics is None:
        return True
    m = ks.method
    return getattr(m, "palindromic", False) or type(m).inverse_body is not Method.inverse_body


def as_batch(single):
    """Batch a one-particle map ``f(prow, v) -> v`` over particles held as six arrays."""

    def one(prow, *xs):
        v = single(prow, jnp.stack(xs))
        return (v[0], v[1], v[2], v[3], v[4], v[5])

    vm = jax.vmap(one, in_axes=(None, 0, 0, 0, 0, 0, 0))
    return lambda prow, X: vm(prow, *X)


def make_batch(ks: KernelSpec, ref: Reference):
    """``f(prow, X) -> (X_out, inside)`` for a batch held as six arrays of shape (n,)."""
    single = make_single(ks, ref)

    def one(prow, *xs):
        v, inside = single(prow, jnp.stack(xs))
        return (v[0], v[1], v[2], v[3], v[4], v[5]), inside

    vm = jax.vmap(one, in_axes=(None, 0, 0, 0, 0, 0, 0))

    def batch(prow, X):
        return vm(prow, *X)

    return batch
