"""Twiss by automatic differentiation: periodic (rings) and from initial conditions (lines).

Transfer matrices to every element come from one ``jax.jacfwd`` of the single-particle
line function at the closed orbit; dispersion, chromaticity and momentum compaction are
derivatives with respect to ``delta`` taken by ``jax.jvp`` through the closed-orbit solve,
never finite differences.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jacc.containers import Twiss
from jacc.particles import pt_from_delta

from .closed_orbit import ClosedOrbitOptions, closed_orbit_4d
from .linear import periodic_twiss_2x2, propagate_twiss


class TwissInit(eqx.Module):
    """Initial conditions of a line: Twiss, dispersion (per delta), orbit, phases.

    Attributes: betx, bety [m]; alfx, alfy; dx, dy [m]; dpx, dpy; x, px, y, py [m, 1];
    mux, muy [2 pi].
    """

    betx: float = 1.0
    alfx: float = 0.0
    bety: float = 1.0
    alfy: float = 0.0
    dx: float = 0.0
    dpx: float = 0.0
    dy: float = 0.0
    dpy: float = 0.0
    x: float = 0.0
    px: float = 0.0
    y: float = 0.0
    py: float = 0.0
    mux: float = 0.0
    muy: float = 0.0

    def __check_init__(self):
        for k in ("betx", "bety"):
            if not float(getattr(self, k)) > 0:
                raise ValueError(f"TwissInit: {k} must be positive, got {getattr(self, k)}")


class TwissStatus(eqx.Module):
    """Status of a periodic Twiss: closed orbit found, motion stable in both planes."""

    converged: jax.Array
    residual: jax.Array
    stable: jax.Array


def _row_values(start, steps, spec):
    """Stack the start row and every placement's row (a placement with no step repeats)."""
    allv = jnp.concatenate([start[None], steps], axis=0)  # index 0: before any step
    return allv[np.concatenate([[0], np.asarray(spec.placement_step)])]


def _rf_off(spec, table):
    """The table with every RF cavity's voltage set to zero (4D optics freeze pt)."""
    for k, ks in enumerate(spec.kernels):
        if ks.kind != "RFCavity":
            continue
        col = 0
        for f, n in ks.layout:
            if f == "voltage":
                rows = np.nonzero(np.asarray(spec.kernel_index) == k)[0]
                table = table.at[rows, col].set(0.0)
            col += n
    return table


def make_twiss_core(spec, line_states, *, periodic: bool, opts: ClosedOrbitOptions, name: str = "line"):
    """``core(table, delta0, init_vec) -> (Twiss, TwissStatus)``, pure; see `jacc.twiss`."""
    beta0 = spec.ref.beta0
    gamma0 = spec.ref.gamma0
    names = (f"{name}$start",) + tuple(spec.names)
    s = np.concatenate([[spec.s0], np.asarray(spec.s_end)])

    def orbit_and_states(table, delta, v0_line):
        pt = pt_from_delta(delta, beta0)
        if periodic:
            one_turn = lambda v: line_states(table, v)[0]
            co = closed_orbit_4d(one_turn, pt, opts)
            v0, conv, res = co.v, co.converged, co.residual
        else:
            v0 = v0_line(delta, pt)
            conv, res = jnp.asarray(True), jnp.asarray(0.0)
        v_end, states = line_states(table, v0)
        return v0, v_end, states, conv, res

    def with_matrices(table, delta, v0_line):
        v0, v_end, states, conv, res = orbit_and_states(table, delta, v0_line)
        jac_end, jac_states = jax.jacfwd(lambda v: line_states(table, v))(v0)
        return v0, states, jac_end, jac_states, res, conv.astype(float)

    def core(table, delta0, init_vec):
        if periodic:
            table = _rf_off(spec, table)

        def v0_line(delta, pt):
            x, px, y, py = init_vec[8], init_vec[9], init_vec[10], init_vec[11]
            d = delta - delta0
            return jnp.stack([x + init_vec[4] * d, px + init_vec[5] * d, y + init_vec[6] * d,
                              py + init_vec[7] * d, jnp.zeros_like(pt), pt])

        d0 = jnp.asarray(delta0, float)
        prim, tang = jax.jvp(lambda d: with_matrices(table, d, v0_line), (d0,), (jnp.ones_like(d0),))
        v0, states, m_end, m_states, res, conv = prim
        dv0, dstates, dm_end = tang[0], tang[1], tang[2]
        rows_v = _row_values(v0, states, spec)
        rows_d = _row_values(dv0, dstates, spec)
        rows_m = _row_values(jnp.eye(6), m_states, spec)
        if periodic:
            bx0, ax0, _, stx = periodic_twiss_2x2(m_end[:2, :2])
            by0, ay0, _, sty = periodic_twiss_2x2(m_end[2:4, 2:4])
            # chromaticity: the derivative of the fractional tunes along the same jvp
            dq = jax.jvp(_frac_tunes, (m_end,), (dm_end,))[1]
            stable = stx & sty
        else:
            bx0, ax0, by0, ay0 = init_vec[0], init_vec[1], init_vec[2], init_vec[3]
            dq = (None, None)
            stable = jnp.asarray(True)
        betx, alfx, mux = propagate_twiss(rows_m[:, 0:2, 0:2], bx0, ax0)
        bety, alfy, muy = propagate_twiss(rows_m[:, 2:4, 2:4], by0, ay0)
        if not periodic:
            mux, muy = mux + init_vec[12], muy + init_vec[13]
        # t = s/beta0 - c dt: over one turn d(t_end - t_0)/d delta = -alpha_c L/beta0 + L/(beta0 gamma0^2)
        dt_dd = dstates[-1, 4] - dv0[4]
        mom = 1.0 / gamma0 ** 2 - beta0 / spec.length * dt_dd
        tw = Twiss(
            name=names, s=s, betx=betx, bety=bety, alfx=alfx, alfy=alfy, mux=mux, muy=muy,
            dx=rows_d[:, 0], dpx=rows_d[:, 1], dy=rows_d[:, 2], dpy=rows_d[:, 3],
            x=rows_v[:, 0], px=rows_v[:, 1], y=rows_v[:, 2], py=rows_v[:, 3],
            qx=mux[-1] if periodic else None, qy=muy[-1] if periodic else None,
            dqx=dq[0], dqy=dq[1], momentum_compaction=mom if periodic else None,
        )
        return tw, TwissStatus(conv > 0.5, res, stable)

    return core


def _frac_tunes(m):
    return periodic_twiss_2x2(m[:2, :2])[2], periodic_twiss_2x2(m[2:4, 2:4])[2]

