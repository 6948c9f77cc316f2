"""Twiss by automatic differentiation: periodic (rings, 4D and 6D) and from initial conditions.

One pass of the line gives everything. At the closed orbit (differentiable, see
`closed_orbit` and `shooting`), the Jacobians of the element maps, multiplied by a parallel
prefix product, give the transfer matrix to every element; the implicit derivative of the
orbit in ``delta`` (a linear solve with those matrices, exact) gives the dispersion. The
chromatic quantities (chromaticity, Montague functions, chromatic phase, second-order
dispersion) need the derivative of every transfer matrix in ``delta``: each element's
Jacobian differentiated along the exact orbit tangent, by automatic differentiation
(``chrom_derivative="exact"``, the default: second derivatives of the maps) or by a
four-point central difference of the Jacobians (``"difference"``, about 1e-10 relative:
the program holds first-order maps only and compiles in about half the time; derivatives of
chromaticities w.r.t. strengths are then second-order programs, not third-order ones).

Dispersion is per ``delta = dp/p0`` (MAD-X's is per ``pt``: ``D_delta = D_pt dpt/ddelta``,
``dpt/ddelta = beta0`` on momentum); chromaticity is ``dQ/ddelta``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jacc.engine.compiler import LineSpec
from jacc.particles import delta_from_pt, pt_from_delta

from .closed_orbit import ClosedOrbitOptions
from .shooting import make_periodic_orbit
from .lattice_functions import c_minus, dispersion_from_w, mode_functions, montague
from .normal_form import normal_form_4d, normal_form_6d
from .one_turn import rf_off, rf_off_spec
from .parallel import cumulative_products, make_steps
from .slicing import slice_bodies
from .result import TwissStatus, TwissTable

INIT_FIELDS = ("betx", "alfx", "bety", "alfy", "dx", "dpx", "dy", "dpy", "x", "px", "y", "py",
               "mux", "muy")


class TwissInit(eqx.Module):
    """Initial conditions of a transfer line (uncoupled at the entrance).

    Attributes:
        betx, bety: beta functions [m] (positive). alfx, alfy: alpha functions [1].
        dx, dy: dispersion [m] per delta = dp/p0. dpx, dpy: its px, py [1].
        x, px, y, py: orbit at the entrance [m], [1].
        mux, muy: phase advances at the entrance [2 pi].
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
        for k in INIT_FIELDS:
            v = getattr(self, k)
            if isinstance(v, (int, float, np.floating)) and not np.isfinite(v):
                raise ValueError(f"TwissInit: {k} must be finite, got {v!r}")
        for k in ("betx", "bety"):
            v = getattr(self, k)
            if isinstance(v, (int, float, np.floating)) and not v > 0:
                raise ValueError(f"TwissInit: {k} must be positive, got {v!r}")

    @classmethod
    def from_table(cls, tw, row: int | str = 0) -> TwissInit:
        """Initial conditions from a row of a Twiss table (index or exact name, first match)."""
        if isinstance(row, str):
            if row not in tw.name:
                raise KeyError(f"TwissInit.from_table: no row named {row!r}")
            row = tw.name.index(row)
        return cls(**{k: float(getattr(tw, k)[row]) for k in INIT_FIELDS})

    def vector(self):
        """The 14 values in the order of `INIT_FIELDS` (a traced array when fields are)."""
        return jnp.stack([jnp.asarray(getattr(self, k), dtype=float) for k in INIT_FIELDS])


def start_vector(delta, beta0: float):
    """``(0, 0, 0, 0, 0, pt(delta))``: the start guess of a 4D orbit at ``delta``."""
    pt = pt_from_delta(jnp.asarray(delta, dtype=float), beta0)
    z = jnp.zeros_like(pt)
    return jnp.stack([z, z, z, z, z, pt])


def _pt_derivatives(delta, beta0):
    """``dpt/ddelta`` and ``d2pt/ddelta2`` at ``delta``."""
    f = lambda d: pt_from_delta(d, beta0)  # noqa: E731
    d1 = lambda d: jax.jvp(f, (d,), (jnp.ones_like(d),))[1]  # noqa: E731
    return jax.jvp(d1, (delta,), (jnp.ones_like(delta),))


def _cs_block(beta, alpha):
    sb = jnp.sqrt(beta)
    return jnp.array([[sb, 0.0], [-alpha / sb, 1.0 / sb]])


def _rows(start, per_step, rows_idx):
    return jnp.concatenate([start[None], per_step], axis=0)[rows_idx]


def make_twiss_core(spec: LineSpec, *, periodic: bool, method: str = "4d",
                    opts: ClosedOrbitOptions = ClosedOrbitOptions(), chrom: bool = True,
                    name: str = "line", chrom_derivative: str = "exact"):
    """``core(table, delta0, init_vec) -> (TwissTable, TwissStatus)``, pure and jittable.

    Args:
        spec: the compiled line; ``table`` is its parameter table.
        periodic: a ring (periodic solution) or a line from ``init_vec`` (`TwissInit.vector`).
        method: ``"4d"`` (RF off, ``pt`` from ``delta0``) or ``"6d"`` (RF on, rings only).
        chrom: compute chromaticity, Montague functions and second-order dispersion (a
            second-order pass, about twice the cost of the first-order one).
        name: the line's name (first row is ``name$start``).
        chrom_derivative: ``"exact"`` or ``"difference"`` (see the module).

    The slices of integrated bodies, and their faces, become steps of their own
    (`slicing`); the rows of the table are unchanged.
    """
    sliced, expand = slice_bodies(rf_off_spec(spec) if method == "4d" else spec)
    inner = _make_core(sliced, periodic=periodic, method=method, opts=opts,
                       chrom=chrom_derivative if chrom else None, name=name)
    if sliced is spec:
        return inner

    def core(table, delta0, init_vec):
        return inner(expand(table), delta0, init_vec)

    return core


def _make_core(spec: LineSpec, *, periodic: bool, method: str, opts: ClosedOrbitOptions,
               chrom: str | None, name: str):
    if method == "6d":
        if not periodic:
            raise NotImplementedError("twiss: method='6d' is for rings; a line uses method='4d'")
        return _make_core_6d(spec, opts=opts, name=name, chrom=chrom or "exact")
    # RF is off in 4D: nothing depends on t, one derivative direction less
    steps_fe = make_steps(spec, passive_t=True)
    steps_f = make_steps(spec, with_jacobian=False)
    # a ring closes x, px, y, py over the turn; a line holds every coordinate at its start
    solve = make_periodic_orbit(steps_fe, steps_f, spec.n_steps, (0, 1, 2, 3) if periodic else (),
                                opts, passive=(4,), chromatic=chrom)
    beta0, gamma0 = spec.ref.beta0, spec.ref.gamma0
    rows_idx = np.concatenate([[0], np.asarray(spec.placement_step, dtype=np.int64)])
    names = (f"{name}$start",) + tuple(spec.names)
    s = jnp.asarray(np.concatenate([[spec.s0], np.asarray(spec.s_end)]))
    length = float(spec.length)

    def orbit(table, delta0, iv, dheld):
        """The orbit (with the chromatic pass) for the tangent ``dheld`` of the held
        coordinates in delta (t and pt for a ring, all six for a line)."""
        pt = pt_from_delta(delta0, beta0)
        z = jnp.zeros_like(pt)
        v = jnp.stack([z, z, z, z, z, pt]) if periodic else jnp.stack([iv[8], iv[9], iv[10], iv[11], z, pt])
        return solve(table, v, dheld)

    def w_start(m_end4, iv):
        if periodic:
            nf = normal_form_4d(m_end4)
            return nf.w, nf.stable
        z = jnp.zeros((2, 2))
        w0 = jnp.block([[_cs_block(iv[0], iv[1]), z], [z, _cs_block(iv[2], iv[3])]])
        return w0, jnp.asarray(True)

    def functions(m_rows4, iv):
        w0, stable = w_start(m_rows4[-1], iv)
        return mode_functions(m_rows4 @ w0), stable

    def core(table, delta0, init_vec):
        table = rf_off(spec, table)
        delta0 = jnp.asarray(delta0, dtype=float)
        iv = jnp.asarray(init_vec, dtype=float)
        dpt, d2pt = _pt_derivatives(delta0, beta0)
        held = (jnp.stack([jnp.zeros_like(dpt), dpt]) if periodic
                else jnp.stack([iv[4], iv[5], iv[6], iv[7], jnp.zeros_like(dpt), dpt]))
        po = orbit(table, delta0, iv, held)
        zs, st, e, jac, conv, res = po.z, po.f, po.e, po.m, po.converged, po.residual
        dzs = solve.solve_prefix(jac, jnp.zeros_like(zs), held)  # the orbit's tangent: implicit, exact
        v0, w = zs[0], dzs[0]
        dst = jnp.einsum("nij,nj->ni", e, dzs)
        orbit_rows = _rows(v0, st, rows_idx)
        disp_rows = _rows(w, dst, rows_idx)
        m_rows = _rows(jnp.eye(6), jac, rows_idx)
        m4 = m_rows[:, :4, :4]
        cols = {}
        if chrom:
            djac = jax.jvp(cumulative_products, (e,), (po.de,))[1]
            dm_rows = _rows(jnp.zeros((6, 6)), djac, rows_idx)
            (f, stable), (df, _) = jax.jvp(lambda m: functions(m, iv), (m4,), (dm_rows[:, :4, :4],))
            if periodic:
                m_end = m_rows[-1]
                rhs = (dm_rows[-1] @ w)[:4] + m_end[:4, 5] * d2pt
                upp = -jnp.linalg.solve(m_end[:4, :4] - jnp.eye(4), rhs)
                vpp = jnp.concatenate([upp, jnp.zeros(1), d2pt[None]])
            else:
                vpp = jnp.zeros(6).at[5].set(d2pt)
            dd_rows = jnp.einsum("nij,j->ni", dm_rows, w) + jnp.einsum("nij,j->ni", m_rows, vpp)
            cols.update(
                wx=montague(f["betx1"], f["alfx1"], df["betx1"], df["alfx1"]),
                wy=montague(f["bety2"], f["alfy2"], df["bety2"], df["alfy2"]),
                dmux=df["mux"], dmuy=df["muy"],
                ddx=dd_rows[:, 0], ddpx=dd_rows[:, 1], ddy=dd_rows[:, 2], ddpy=dd_rows[:, 3])
        else:
            f, stable = functions(m4, iv)
        mux, muy = f["mux"], f["muy"]
        if not periodic:
            mux, muy = mux + iv[12], muy + iv[13]
        summary = {}
        if periodic:
            summary = dict(qx=mux[-1], qy=muy[-1],
                           momentum_compaction=1.0 / gamma0**2 - beta0 / length * (disp_rows[-1, 4] - w[4]),
                           c_minus=c_minus(f, s, mux[-1], muy[-1], length))
            if chrom:
                summary.update(dqx=cols["dmux"][-1], dqy=cols["dmuy"][-1])
        tw = TwissTable(
            name=names, s=s, betx=f["betx1"], bety=f["bety2"], alfx=f["alfx1"], alfy=f["alfy2"],
            mux=mux, muy=muy,
            dx=disp_rows[:, 0], dpx=disp_rows[:, 1], dy=disp_rows[:, 2], dpy=disp_rows[:, 3],
            x=orbit_rows[:, 0], px=orbit_rows[:, 1], y=orbit_rows[:, 2], py=orbit_rows[:, 3],
            t=orbit_rows[:, 4], pt=orbit_rows[:, 5],
            betx1=f["betx1"], bety1=f["bety1"], betx2=f["betx2"], bety2=f["bety2"],
            alfx1=f["alfx1"], alfy1=f["alfy1"], alfx2=f["alfx2"], alfy2=f["alfy2"],
            **cols, **summary)
        return tw, TwissStatus(jnp.asarray(conv), jnp.asarray(res, dtype=float), stable)

    return core


def _make_core_6d(spec: LineSpec, *, opts: ClosedOrbitOptions, name: str, chrom: str):
    """6D periodic optics: closed orbit with RF, 6x6 normal form, synchrotron tune.

    Chromaticity, Montague functions, second-order dispersion and momentum compaction are
    those of the 4D optics at the energy of the 6D closed orbit (with RF the momentum
    cannot be varied alone); dispersion is the 6D one (from the longitudinal eigenvector).
    """
    steps_fe, steps_f = make_steps(spec), make_steps(spec, with_jacobian=False)
    solve = make_periodic_orbit(steps_fe, steps_f, spec.n_steps, tuple(range(6)), opts)
    core4 = _make_core(rf_off_spec(spec), periodic=True, method="4d", opts=opts, chrom=chrom, name=name)
    beta0 = spec.ref.beta0
    rows_idx = np.concatenate([[0], np.asarray(spec.placement_step, dtype=np.int64)])

    def core(table, delta0, init_vec):
        co = solve(table, jnp.zeros(6))
        v0, st = co.z[0], co.f
        orbit_rows = _rows(v0, st, rows_idx)
        m_rows = _rows(jnp.eye(6), co.m, rows_idx)
        nf = normal_form_6d(m_rows[-1])
        w_rows = m_rows @ nf.w
        fn = mode_functions(w_rows)
        delta_co = delta_from_pt(v0[5], beta0)
        dpt = jax.grad(lambda d: pt_from_delta(d, beta0))(delta_co)
        disp = dispersion_from_w(w_rows) * dpt
        tw4, st4 = core4(table, delta_co, init_vec)
        tw = TwissTable(
            name=tw4.name, s=tw4.s, betx=fn["betx1"], bety=fn["bety2"], alfx=fn["alfx1"],
            alfy=fn["alfy2"], mux=fn["mux"], muy=fn["muy"],
            dx=disp[:, 0], dpx=disp[:, 1], dy=disp[:, 2], dpy=disp[:, 3],
            x=orbit_rows[:, 0], px=orbit_rows[:, 1], y=orbit_rows[:, 2], py=orbit_rows[:, 3],
            t=orbit_rows[:, 4], pt=orbit_rows[:, 5],
            betx1=fn["betx1"], bety1=fn["bety1"], betx2=fn["betx2"], bety2=fn["bety2"],
            alfx1=fn["alfx1"], alfy1=fn["alfy1"], alfx2=fn["alfx2"], alfy2=fn["alfy2"],
            wx=tw4.wx, wy=tw4.wy, dmux=tw4.dmux, dmuy=tw4.dmuy,
            ddx=tw4.ddx, ddpx=tw4.ddpx, ddy=tw4.ddy, ddpy=tw4.ddpy,
            qx=fn["mux"][-1], qy=fn["muy"][-1], qs=jnp.abs(fn["muzeta"][-1]),
            dqx=tw4.dqx, dqy=tw4.dqy, momentum_compaction=tw4.momentum_compaction,
            c_minus=c_minus(fn, tw4.s, fn["mux"][-1], fn["muy"][-1], float(spec.length)))
        status = TwissStatus(co.converged & st4.converged, co.residual, nf.stable & st4.stable)
        return tw, status

    return core
