"""Slices of integrated element bodies as scan steps of their own, for optics.

Optics evaluates every scan step side by side once the orbit at each step's entrance is
known (`parallel`), but an element whose body is ``n`` drift-kick slices (Xsuite's bends
integrate 4 to 48 slices of 7 kicks each) would still run its slices one after the other,
on a handful of values: loop overhead, not arithmetic. `slice_bodies` rewrites the
compiled line so that the entry face, each slice and the exit face are steps of their
own: the same map, composed in the same order, with the intermediate orbits found by the
same Newton iteration as the others. The slice count is read from an extra column of the
parameter table, so the slices of all elements of one physics and slice method form a
single kernel, evaluated in one vectorised pass. Misaligned elements are left whole
(their frame change wraps the entire body).

Measured on IOTA: splitting further, into the single (drift, kick) pairs of each slice,
makes the evaluation memory-bound and optics 3x slower; slices of 7 kicks, each a short
scan on a vector of ~200 values, are the faster granularity on CPU.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from jacc.engine.compiler import KernelSpec, LineSpec
from jacc.physics.base import DividedPieces, Method, has_face

# parameter name of a slice's divisor (after the element's own fields)
SLICES = "_slices"


class Slice(Method):
    """One of ``n`` equal slices of a body (``inner`` over ``1/n`` of the element), ``n``
    read from the row's extra column; no faces."""

    inner: Method

    def body(self, phys, p, x, ref):
        return self.inner.body(DividedPieces(phys, p[SLICES]), p, x, ref)

    def __call__(self, phys, p, x, ref):
        return self.body(phys, p, x, ref)


class Face(Method):
    """The element's entry (``side="entry"``) or exit face alone."""

    side: str = eqx.field(static=True)

    def __call__(self, phys, p, x, ref):
        return phys.entry(p, x, ref) if self.side == "entry" else phys.exit(p, x, ref)


def _parts(ks: KernelSpec):
    """``[(kernel, slice count or None)]`` replacing one step of ``ks`` (itself when whole)."""
    split = None if ks.method is None or ks.misaligned else ks.method.one_slice()
    if split is None:
        return [(ks, None)]
    inner, n = split
    derived = lambda method, layout: dataclasses.replace(  # noqa: E731
        ks, method=method, layout=layout, aperture=None)
    body = derived(Slice(inner=inner), ks.layout + ((SLICES, 1),))
    out = [(derived(Face(side="entry"), ks.layout), None)] if has_face(ks.physics, "entry") else []
    out += [(body, float(n))] * n
    if has_face(ks.physics, "exit"):
        out.append((derived(Face(side="exit"), ks.layout), None))
    return out


def slice_bodies(spec: LineSpec) -> tuple[LineSpec, Callable]:
    """``(sliced_spec, expand)``: the line with integrated bodies as separate steps.

    ``expand(table)`` is the parameter table of the sliced line (every step reads its
    element's row, slices also their count); jittable and differentiable. Rows of
    optics tables (``placement_step``) still end at each placement's exit;
    ``spec.signature`` is kept. A line without such bodies comes back unchanged.
    """
    kernels: list[KernelSpec] = []
    index_of: dict = {}
    kidx, row_map, divisors, count = [], [], [], [0]
    for j, k in enumerate(np.asarray(spec.kernel_index)):
        for part, n in _parts(spec.kernels[k]):
            if part not in index_of:
                index_of[part] = len(kernels)
                kernels.append(part)
            kidx.append(index_of[part])
            row_map.append(j)
            divisors.append(n)
        count.append(len(kidx))
    if len(kidx) == spec.n_steps:
        return spec, lambda table: table
    row_map = np.asarray(row_map, dtype=np.int64)
    width = spec.table.shape[1]
    new_width = max([width] + [kernels[k].width for k in kidx])
    mask = np.zeros((len(kidx), new_width), dtype=bool)
    const = np.zeros((len(kidx), new_width))
    for i, (k, n) in enumerate(zip(kidx, divisors)):
        if n is not None:
            mask[i, kernels[k].width - 1] = True
            const[i, kernels[k].width - 1] = n

    def expand(table, xp=jnp):
        t = xp.asarray(table)
        if new_width > width:
            t = xp.pad(t, ((0, 0), (0, new_width - width)))
        return xp.where(mask, const, t[row_map])

    count = np.asarray(count, dtype=np.int64)
    sliced = dataclasses.replace(
        spec, kernels=tuple(kernels), kernel_index=np.asarray(kidx, dtype=spec.kernel_index.dtype),
        table=expand(spec.table, np), step_placement=np.asarray(spec.step_placement)[row_map],
        placement_step=count[np.asarray(spec.placement_step, dtype=np.int64)])
    return sliced, expand
