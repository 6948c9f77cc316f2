"""Slices of integrated element bodies as scan steps of their own, for optics.

Optics evaluates every scan step side by side once the orbit at each step's entrance is
known (`parallel`), but an element whose body is ``n`` drift-kick slices (Xsuite's bends
integrate 4 to 48 slices of 7 kicks each) still runs its slices one after the other, on a
handful of values: loop overhead, not arithmetic. `slice_bodies` rewrites the compiled
line so that each slice is a step, with the entry face on the first and the exit face on
the last: the same map, composed in the same order, with the intermediate orbits found by
the same Newton iteration as the others. Misaligned elements are left whole (their frame
change wraps the entire body).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import numpy as np

from jacc.engine.compiler import KernelSpec, LineSpec
from jacc.physics.base import DividedPieces, Method


class BodySlice(Method):
    """One of ``n`` slices of a body (``inner`` over ``1/n`` of the element), with the
    element's entry face when ``first`` and its exit face when ``last``."""

    inner: Method
    n: int = eqx.field(static=True)
    first: bool = eqx.field(static=True, default=False)
    last: bool = eqx.field(static=True, default=False)

    def body(self, phys, p, x, ref):
        return self.inner.body(DividedPieces(phys, self.n), p, x, ref)

    def __call__(self, phys, p, x, ref):
        if self.first:
            x = phys.entry(p, x, ref)
        x = self.body(phys, p, x, ref)
        return phys.exit(p, x, ref) if self.last else x


def _parts(ks: KernelSpec) -> tuple[KernelSpec, ...]:
    """The kernels that replace one step of ``ks``: itself, or first, middle, last slice."""
    split = None if ks.method is None or ks.misaligned else ks.method.one_slice()
    if split is None:
        return (ks,)
    inner, n = split
    part = lambda first, last: dataclasses.replace(  # noqa: E731
        ks, method=BodySlice(inner=inner, n=n, first=first, last=last))
    return (part(True, False),) + (part(False, False),) * (n - 2) + (part(False, True),)


def slice_bodies(spec: LineSpec) -> tuple[LineSpec, np.ndarray]:
    """``(sliced_spec, row_map)``: the line with sliced bodies as separate steps.

    ``table[row_map]`` is the parameter table of the sliced line (every slice reads its
    element's row). Rows of optics tables (``placement_step``) still end at each
    placement's exit; ``spec.signature`` is kept.
    """
    kernels: list[KernelSpec] = []
    index_of: dict = {}
    kidx, row_map, count = [], [], [0]
    for j, k in enumerate(np.asarray(spec.kernel_index)):
        for part in _parts(spec.kernels[k]):
            key = (int(k), part.method.first, part.method.last) if isinstance(part.method, BodySlice) \
                else (int(k),)
            if key not in index_of:
                index_of[key] = len(kernels)
                kernels.append(part)
            kidx.append(index_of[key])
            row_map.append(j)
        count.append(len(kidx))
    if len(kidx) == spec.n_steps:
        return spec, np.arange(spec.n_steps)
    row_map = np.asarray(row_map, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    sliced = dataclasses.replace(
        spec, kernels=tuple(kernels), kernel_index=np.asarray(kidx, dtype=spec.kernel_index.dtype),
        table=spec.table[row_map], step_placement=np.asarray(spec.step_placement)[row_map],
        placement_step=count[np.asarray(spec.placement_step, dtype=np.int64)])
    return sliced, row_map
