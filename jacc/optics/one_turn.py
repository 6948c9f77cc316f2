"""One-pass maps of a compiled line for optics: the one-turn map, RF switched off for 4D.

Both are pure functions of the parameter table (see `jacc.engine.tracker`), so
``jax.jacfwd`` gives the one-turn matrix and the transfer matrices to every element.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jax import lax

from jacc.engine.compiler import LineSpec
from jacc.engine.kernels import make_single


def make_one_turn(spec: LineSpec):
    """``f(table, v (6,)) -> v (6,)``: one particle through the whole line, no states kept."""
    singles = [make_single(k, spec.ref) for k in spec.kernels]
    kidx = jnp.asarray(spec.kernel_index)

    def step(v, inp):
        k, prow = inp
        if len(singles) == 1:
            return singles[0](prow, v)[0], None
        return lax.switch(k, singles, prow, v)[0], None

    def f(table, v):
        if spec.n_steps == 0:
            return v
        return lax.scan(step, v, (kidx, table))[0]

    return f


def rf_columns(spec: LineSpec):
    """``(rows, col)`` of every RF cavity's voltage in the parameter table (numpy)."""
    out = []
    kidx = np.asarray(spec.kernel_index)
    for k, ks in enumerate(spec.kernels):
        if ks.kind != "RFCavity":
            continue
        col = 0
        for f, n in ks.layout:
            if f == "voltage":
                out.append((np.nonzero(kidx == k)[0], col))
            col += n
    return out


def rf_off(spec: LineSpec, table):
    """The table with every RF cavity's voltage set to zero (4D optics hold ``pt`` fixed)."""
    for rows, col in rf_columns(spec):
        if len(rows):
            table = table.at[rows, col].set(0.0)
    return table


def has_rf(spec: LineSpec, table) -> bool:
    """Whether any RF cavity has a nonzero voltage (concrete tables only)."""
    t = np.asarray(table)
    return any(np.any(t[rows, col] != 0.0) for rows, col in rf_columns(spec) if len(rows))


def rf_off_spec(spec: LineSpec) -> LineSpec:
    """The line with its RF cavities modelled without their kick, for optics that set
    their voltage to zero (`rf_off`): a smaller program for the same map. The table, its
    layout and `rf_columns` are unchanged."""
    from jacc.physics.rfcavity import without_kick

    kernels = []
    for ks in spec.kernels:
        if ks.kind == "RFCavity" and ks.physics is not None:
            physics, method = without_kick(ks.physics, ks.method)
            ks = dataclasses.replace(ks, physics=physics, method=method)
        kernels.append(ks)
    return dataclasses.replace(spec, kernels=tuple(kernels))
