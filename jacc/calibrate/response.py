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
from jacc.engine.tracker import setter_value, table_from_dynamic

from .orm import OrbitResponse


def _linear_maps(single):
    """Batched ``rows -> (n, 6, 6)`` Jacobians of one kernel at the reference orbit."""
    return jax.vmap(lambda row: jax.jacfwd(lambda v: single(row, v)[0])(jnp.zeros(6)))


def _closed_form_maps(ks, ref):
    """Batched ``rows -> (n, 6, 6)`` from the physics' own exact matrix, or None.

    Only for steps whose map is one exact flow (or `Linear`) of an aligned element: then
    the matrix is the map's linearisation, and it is much cheaper to differentiate (HMC
    differentiates it at every step) than a Jacobian of the flow.
    """
    from jacc.physics.base import Flow, Linear

    if ks.physics is None or ks.misaligned or ks.kind == "RBend" or not isinstance(ks.method, (Flow, Linear)):
        return None

    def one(row):
        p, c = {}, 0
        for f, n in ks.layout:
            p[f] = row[c] if n == 1 else row[c:c + n]
            c += n
        return ks.physics.matrix(p, ref)

    try:
        return jax.vmap(one)
    except Exception:  # noqa: BLE001 - a physics without a matrix: use the Jacobian
        return None


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
        self._maps = [_linear_maps(f) for f in self._singles]
        self._kidx = np.asarray(spec.kernel_index)
        table0 = np.asarray(table_from_dynamic(spec, self.dynamic))
        step_m = np.asarray(jax.jit(lambda t: self._step_matrices(t, np.arange(n)))(table0))
        # where the physics gives its exact matrix, use it for the variable steps (checked
        # against the map's Jacobian here, on the lattice's values)
        for k in np.unique(self._kidx[self.variable_steps]) if len(self.variable_steps) else []:
            closed = _closed_form_maps(spec.kernels[k], spec.ref)
            if closed is None:
                continue
            steps = self.variable_steps[self._kidx[self.variable_steps] == k]
            try:
                m = np.asarray(jax.jit(closed)(jnp.asarray(table0[steps])))
            except Exception:  # noqa: BLE001 - no matrix for this physics
                continue
            if m.shape == step_m[steps].shape and np.allclose(m, step_m[steps], rtol=1e-12, atol=1e-13):
                self._maps[k] = closed

        # Anchors: the start and the exit of every variable step. Every observation point
        # ("after p scan steps": a BPM, a corrector's exit, the ring end) is a constant
        # matrix D away from the last anchor before it; consecutive anchors are a constant
        # stretch C then the variable step V apart.
        bpm_after = np.asarray(spec.placement_step[list(self.layout.bpm_index)], dtype=np.int64)
        kicks = self.layout.kick_keys
        corr_after = np.array([kick_step[k] + 1 for k in kicks], dtype=np.int64)
        var = self.variable_steps
        anchor_after = np.concatenate([[0], var + 1])

        def product(p, q):
            m = np.eye(6)
            for j in range(p, q):
                m = step_m[j] @ m
            return m

        self._stretch = np.array([product(a, j) for a, j in zip(anchor_after[:-1], var)]).reshape(-1, 6, 6)
        points = np.concatenate([bpm_after, corr_after, [n]])
        last = np.searchsorted(anchor_after, points, side="right") - 1
        self._obs_anchor = last
        self._obs_from = np.array([product(anchor_after[k], p) for k, p in zip(last, points)])
        nb, nk = len(bpm_after), len(corr_after)
        self._bpm_obs = np.arange(nb)
        self._corr_obs = nb + np.arange(nk)
        self._end_obs = nb + nk
        # the rows of the variable steps and the setters that write into them
        self._var_rows = table0[var] if len(var) else np.zeros((0, table0.shape[1]))
        pos = {int(j): i for i, j in enumerate(var)}
        self._var_setters = []
        for st in spec.setters:
            rows = [pos[r] for r in st.rows if r in pos]
            if rows:
                self._var_setters.append((st, np.asarray(rows)))
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
            out = out.at[sel].set(self._maps[k](table[steps[sel]]))
        return out

    def _variable_rows(self, dynamic: dict):
        """Parameter rows of the variable steps with the dynamic values written in."""
        rows = jnp.asarray(self._var_rows)
        for st, idx in self._var_setters:
            v = setter_value(st, dynamic, len(idx), rows.dtype)
            rows = rows.at[idx, st.col:st.col + st.size].set(v)
        return rows

    def transfer(self, dynamic: dict | None = None):
        """``(A at the observation points (n_points, 6, 6), one-turn matrix (6, 6))``.

        Points: the BPMs, then the correctors' exits, then the ring end.
        """
        d = self.dynamic if dynamic is None else dynamic
        var = self.variable_steps
        if len(var):
            v = self._step_matrices_at(self._variable_rows(d))

            def step(a, cv):
                c, vm = cv
                a = vm @ (c @ a)
                return a, a

            _, anchors = jax.lax.scan(step, jnp.eye(6), (jnp.asarray(self._stretch), v))
            anchors = jnp.concatenate([jnp.eye(6)[None], anchors])
        else:
            anchors = jnp.eye(6)[None]
        a = jnp.einsum("pij,pjk->pik", jnp.asarray(self._obs_from), anchors[self._obs_anchor])
        return a, a[self._end_obs]

    def _step_matrices_at(self, rows):
        """Linear maps of the variable steps from their parameter rows."""
        kid = self._kidx[self.variable_steps]
        out = jnp.zeros((len(kid), 6, 6))
        for k in np.unique(kid):
            sel = np.nonzero(kid == k)[0]
            out = out.at[sel].set(self._maps[k](rows[sel]))
        return out

    def orm(self, dynamic: dict | None = None) -> jnp.ndarray:
        """Orbit response matrix (2 n_bpms, n_kicks) [m/rad] (rows x then y, cols h then v)."""
        a, m = self.transfer(dynamic)
        m4 = m[:4, :4]
        p = a[self._corr_obs][:, :4, :4]                      # (nk, 4, 4)
        e = jnp.asarray(self._kick_dir[:, :4])                  # (nk, 4)
        x = jnp.linalg.solve(jnp.eye(4) - m4, jnp.linalg.solve(p, e[..., None])[..., 0].T)  # (4, nk)
        y = m4 @ x
        ab = a[self._bpm_obs][:, :4, :4]                       # (nb, 4, 4)
        zx = jnp.einsum("bij,jk->bik", ab, x)                 # (nb, 4, nk): BPM after corrector
        zy = jnp.einsum("bij,jk->bik", ab, y)                 # BPM before corrector
        z = jnp.where(jnp.asarray(self._wraps)[:, None, :], zy, zx)
        return jnp.concatenate([z[:, 0, :], z[:, 2, :]], axis=0)

    def dispersion(self, dynamic: dict | None = None) -> jnp.ndarray:
        """Dispersion at the BPMs, x then y [m] per ``delta = dp/p0`` (4D, pt held fixed)."""
        a, m = self.transfer(dynamic)
        eta0 = jnp.linalg.solve(jnp.eye(4) - m[:4, :4], m[:4, 5])
        ab = a[self._bpm_obs]
        eta = jnp.einsum("bij,j->bi", ab[:, :4, :4], eta0) + ab[:, :4, 5]
        return jnp.concatenate([eta[:, 0], eta[:, 2]]) * self.beta0
