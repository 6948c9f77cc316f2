"""Fusion of runs of linear elements into one affine map per run.

A step whose model is `Linear()` (its exact 6x6 matrix), that has no aperture and whose
parameters are compile-time constants (no flagged field or differentiable knob reaches its
row) maps a particle by ``x -> M x + c``, misalignments included (shifts and rolls are
affine too). A run of such steps is one affine map: ``fuse_linear`` replaces each run of
two or more by a single step of the kernel ``FusedLinear``, whose parameter row holds the
composed ``M`` (36 numbers, row-major) and ``c`` (6). The tracking loop then does one
matrix product where it did one per element.

Runs stop where the state must be seen: at the steps after which a monitor records, and at
every step that is not fusible. Placements inside a fused run are seen at the run's end
(their loss index, for instance). Optics keep the unfused line: they need every element.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jacc.physics.base import ElementPhysics, Linear

from .compiler import KernelSpec, LineSpec
from .kernels import make_single

__all__ = ["AffineMap", "FUSED_KERNEL", "fuse_linear", "fusible_steps"]


class AffineMap(ElementPhysics):
    """A thin affine map ``x -> m x + c`` (fields ``m``: 36 numbers, row-major; ``c``: 6)."""

    fields: ClassVar[tuple[str, ...]] = ("m", "c")

    def matrix(self, p, ref):
        return jnp.reshape(p["m"], (6, 6))

    def offset(self, p, ref):
        return p["c"]


FUSED_KERNEL = KernelSpec("FusedLinear", AffineMap(), Linear(), (("m", 36), ("c", 6)))


def fusible_steps(spec: LineSpec) -> np.ndarray:
    """Per scan step, whether it is a constant affine map (see the module)."""
    linear = np.array([k.physics is not None and isinstance(k.method, Linear) and k.aperture is None
                       for k in spec.kernels], dtype=bool)
    ok = linear[np.asarray(spec.kernel_index)] if spec.n_steps else np.zeros(0, bool)
    for s in spec.setters:
        ok[np.asarray(s.rows, dtype=np.int64)] = False
    return ok


def _runs(ok: np.ndarray, cuts: set[int]) -> list[tuple[int, int]]:
    """Maximal ``[a, b)`` of fusible steps, ``b - a >= 2``, not crossing a cut (a step count
    after which the state is observed)."""
    runs, a = [], None
    for j in range(len(ok) + 1):
        if a is not None and (j == len(ok) or not ok[j] or j in cuts):
            if j - a >= 2:
                runs.append((a, j))
            a = None
        if j < len(ok) and ok[j] and a is None:
            a = j
    return runs


def _step_maps(spec: LineSpec, steps: np.ndarray):
    """``(M (n, 6, 6), c (n, 6))`` of the affine steps ``steps``, one vmap per kernel."""
    kidx = np.asarray(spec.kernel_index)[steps]
    m = np.zeros((len(steps), 6, 6))
    c = np.zeros((len(steps), 6))
    for k in np.unique(kidx):
        single = make_single(spec.kernels[int(k)], spec.ref)

        def affine(prow, single=single):
            f = lambda v: single(prow, v)[0]
            zero = jnp.zeros(6, prow.dtype)
            return jax.jacfwd(f)(zero), f(zero)

        sel = kidx == k
        mk, ck = jax.jit(jax.vmap(affine))(jnp.asarray(spec.table[steps[sel]]))
        m[sel], c[sel] = np.asarray(mk), np.asarray(ck)
    return m, c


def fuse_linear(spec: LineSpec, observed: np.ndarray | None = None) -> LineSpec:
    """``spec`` with each run of constant linear steps replaced by one `FusedLinear` step.

    ``observed``: placement indices whose exit state must stay visible (the monitors that
    are recorded); runs are cut there. Returns ``spec`` itself when nothing fuses.
    """
    ok = fusible_steps(spec)
    at = np.zeros(0, np.int64) if observed is None else np.asarray(observed, dtype=np.int64)
    cuts = {int(spec.placement_step[i]) for i in at}
    runs = _runs(ok, cuts)
    if not runs:
        return spec
    steps = np.concatenate([np.arange(a, b) for a, b in runs])
    m, c = _step_maps(spec, steps)
    maps = dict(zip(steps.tolist(), zip(m, c)))

    kernels = spec.kernels if FUSED_KERNEL in spec.kernels else spec.kernels + (FUSED_KERNEL,)
    fused_k = kernels.index(FUSED_KERNEL)
    width = max(spec.table.shape[1], FUSED_KERNEL.width)
    start_of = {a: b for a, b in runs}
    new_of_old = np.zeros(spec.n_steps + 1, dtype=np.int64)  # steps done -> new steps done
    kidx, rows, step_pl = [], [], []
    j = 0
    while j < spec.n_steps:
        if j in start_of:
            b = start_of[j]
            mm, cc = np.eye(6), np.zeros(6)
            for s in range(j, b):  # compose in tracking order: x -> M_s (...) + c_s
                ms, cs = maps[s]
                mm, cc = ms @ mm, ms @ cc + cs
            row = np.zeros(width)
            row[:36], row[36:42] = mm.ravel(), cc
            kidx.append(fused_k)
            step_pl.append(int(spec.step_placement[b - 1]))
            rows.append(row)
            new_of_old[j + 1:b + 1] = len(kidx)
            j = b
        else:
            row = np.zeros(width)
            row[: spec.table.shape[1]] = spec.table[j]
            kidx.append(int(spec.kernel_index[j]))
            step_pl.append(int(spec.step_placement[j]))
            rows.append(row)
            new_of_old[j + 1] = len(kidx)
            j += 1
    setters = tuple(dataclasses.replace(s, rows=tuple(int(new_of_old[r + 1] - 1) for r in s.rows))
                    for s in spec.setters)
    kernel_index = np.asarray(kidx, dtype=np.int32)
    table = np.asarray(rows).reshape(len(rows), width)
    signature = spec.signature + (("fused", kernel_index.tobytes()),)
    return dataclasses.replace(
        spec, kernels=kernels, kernel_index=kernel_index, table=table,
        step_placement=np.asarray(step_pl, dtype=np.int64),
        placement_step=new_of_old[np.asarray(spec.placement_step)], setters=setters,
        signature=signature)
