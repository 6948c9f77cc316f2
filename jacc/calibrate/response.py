"""Fast linear response: the ORM and dispersion from transfer matrices, constant stretches fused.

The ORM is the derivative of the closed orbit w.r.t. the kicks, so about the reference orbit
(no kicks, no misalignments) it depends only on the linear maps of the elements. For a
corrector whose kick enters just after transfer ``P`` from the ring start, with one-turn
matrix ``M``, the orbit at a BPM with transfer ``A_b`` is

    z_b = A_b [M if the BPM comes first, else I] (I - M)^-1 P^-1 e      (e: the kick direction)

and the dispersion is ``A_b (I - M)^-1 m + a_b`` (``m``, ``a_b``: the pt columns), times
beta0. Only the elements whose parameters vary (e.g. the quadrupoles of a LOCO fit) are
linearised at each call (``jax.jacfwd`` of the engine's own element map); every stretch
between them, the BPMs and the correctors is one constant matrix computed once. A call
then costs about a hundred 6x6 products instead of tracking through the ring: what makes
Levenberg-Marquardt and HMC over the quadrupole errors quick.

`OrbitResponse` (``jacfwd`` of the Newton closed orbit) is the reference this agrees with;
valid while the closed orbit stays at the reference (the linear maps are taken there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jacc.engine.kernels import make_single
from jacc.engine.tracker import table_from_dynamic

from .orm import OrbitResponse


def _linear_maps(single):
    """Batched ``rows -> (n, 6, 6)`` Jacobians of one kernel at the reference orbit."""
    return jax.vmap(lambda row: jax.jacfwd(lambda v: single(row, v)[0])(jnp.zeros(6)))


def _kick_directions(single):
    """Batched ``(rows, cols) -> (n, 6)``: d(output at zero orbit)/d(row[col])."""
    def one(row, col):
        return jax.jacfwd(lambda a: single(row.at[col].set(a), jnp.zeros(6))[0])(row[col])

    return jax.jit(jax.vmap(one))


class LinearResponse:
    """ORM and dispersion of an `OrbitResponse`'s layout from fused transfer matrices.

    Args:
        response: the `OrbitResponse` whose lattice, layout and ``vary`` parameters to use.

    Attributes:
        dynamic: the engine parameters at their lattice values.
        variable_steps: scan steps whose matrices depend on non-kick dynamic parameters.
    """

    def __init__(self, response: OrbitResponse):
        spec = response.spec
        self.response = response
        self.layout = response.layout
        self.dynamic = response.dynamic
        self.beta0 = response.beta0
        kick_keys = set(self.layout.kick_keys)
        n = spec.n_steps
        variable: set[int] = set()
        kick_step: dict[str, int] = {}
        kick_col: dict[str, int] = {}
        for s in spec.setters:
            names = {s.key} if s.key is not None else set(s.expr.names)
            if s.key in kick_keys:
                kick_step[s.key] = s.rows[0]
                kick_col[s.key] = s.col
            elif names & set(spec.dynamic_init):
                variable.update(s.rows)
        clash = variable & set(kick_step.values())
        if clash:
            raise ValueError("LinearResponse: a corrector's own parameters vary too "
                             f"(scan steps {sorted(clash)}); fit them with OrbitResponse")
        self.variable_steps = np.array(sorted(variable), dtype=np.int64)
        self._singles = [make_single(k, spec.ref) for k in spec.kernels]
        self._kidx = np.asarray(spec.kernel_index)
        table0 = np.asarray(table_from_dynamic(spec, self.dynamic))
        step_m = np.asarray(jax.jit(lambda t: self._step_matrices(t, np.arange(n)))(table0))

        # cut points: "after p scan steps"; at each, marks of what is observed there
        bpm_after = np.asarray(spec.placement_step[list(self.layout.bpm_index)], dtype=np.int64)
        kicks = self.layout.kick_keys
        corr_after = np.array([kick_step[k] + 1 for k in kicks], dtype=np.int64)
        cuts = set(bpm_after.tolist()) | set(corr_after.tolist()) | {0, n}
        for j in self.variable_steps:
            cuts |= {int(j), int(j) + 1}
        cuts = sorted(cuts)
        self._tokens = []  # ("const", matrix) or ("var", index into variable_steps)
        var_pos = {int(j): i for i, j in enumerate(self.variable_steps)}
        self._cut_of = {p: i for i, p in enumerate(cuts)}
        for p, q in zip(cuts[:-1], cuts[1:]):
            if q == p + 1 and p in var_pos:
                self._tokens.append(("var", var_pos[p]))
            else:
                m = np.eye(6)
                for j in range(p, q):
                    m = step_m[j] @ m
                self._tokens.append(("const", m))
        self._n_cuts = len(cuts)
        self._bpm_cut = np.array([self._cut_of[int(p)] for p in bpm_after])
        self._corr_cut = np.array([self._cut_of[int(p)] for p in corr_after])
        # the kick direction: d(step output)/d(kick) at the reference orbit (a unit px or py
        # vector for a thin corrector)
        steps = np.array([kick_step[k] for k in kicks], dtype=np.int64)
        cols = np.array([kick_col[k] for k in kicks], dtype=np.int64)
        e = np.zeros((len(kicks), 6))
        for k in np.unique(self._kidx[steps]) if len(steps) else []:
            sel = np.nonzero(self._kidx[steps] == k)[0]
            e[sel] = np.asarray(_kick_directions(self._singles[k])(
                jnp.asarray(table0[steps[sel]]), jnp.asarray(cols[sel])))
        self._kick_dir = e
        # BPM before corrector (in s from the ring start): its orbit has gone once around
        self._wraps = (bpm_after[:, None] < corr_after[None, :])

    def _step_matrices(self, table, steps):
        """6x6 linear maps of scan ``steps`` about the reference orbit, shape (len(steps), 6, 6)."""
        table = jnp.asarray(table)
        out = jnp.zeros((len(steps), 6, 6))
        for k in np.unique(self._kidx[steps]):
            sel = np.nonzero(self._kidx[steps] == k)[0]
            out = out.at[sel].set(_linear_maps(self._singles[k])(table[steps[sel]]))
        return out

    def transfer(self, dynamic: dict | None = None):
        """``(A at every cut (n_cuts, 6, 6), one-turn matrix (6, 6))`` from the ring start."""
        d = self.dynamic if dynamic is None else dynamic
        spec = self.response.spec
        var_m = None
        if len(self.variable_steps):
            table = table_from_dynamic(spec, d)
            var_m = self._step_matrices(table, self.variable_steps)
        a = [jnp.eye(6)]
        for kind, x in self._tokens:
            m = x if kind == "const" else var_m[x]
            a.append(jnp.asarray(m) @ a[-1])
        a = jnp.stack(a)
        return a, a[-1]

    def orm(self, dynamic: dict | None = None) -> jnp.ndarray:
        """Orbit response matrix (2 n_bpms, n_kicks) [m/rad] (rows x then y, cols h then v)."""
        a, m = self.transfer(dynamic)
        m4 = m[:4, :4]
        p = a[self._corr_cut][:, :4, :4]                      # (nk, 4, 4)
        e = jnp.asarray(self._kick_dir[:, :4])                  # (nk, 4)
        x = jnp.linalg.solve(jnp.eye(4) - m4, jnp.linalg.solve(p, e[..., None])[..., 0].T)  # (4, nk)
        y = m4 @ x
        ab = a[self._bpm_cut][:, :4, :4]                       # (nb, 4, 4)
        zx = jnp.einsum("bij,jk->bik", ab, x)                 # (nb, 4, nk): BPM after corrector
        zy = jnp.einsum("bij,jk->bik", ab, y)                 # BPM before corrector
        z = jnp.where(jnp.asarray(self._wraps)[:, None, :], zy, zx)
        return jnp.concatenate([z[:, 0, :], z[:, 2, :]], axis=0)

    def dispersion(self, dynamic: dict | None = None) -> jnp.ndarray:
        """Dispersion at the BPMs, x then y [m] per ``delta = dp/p0`` (4D, pt held fixed)."""
        a, m = self.transfer(dynamic)
        eta0 = jnp.linalg.solve(jnp.eye(4) - m[:4, :4], m[:4, 5])
        ab = a[self._bpm_cut]
        eta = jnp.einsum("bij,j->bi", ab[:, :4, :4], eta0) + ab[:, :4, 5]
        return jnp.concatenate([eta[:, 0], eta[:, 2]]) * self.beta0
