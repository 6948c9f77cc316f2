"""The linearised chain of element maps: Newton corrections by multiple shooting.

A line of ``n`` steps with maps ``F_j`` is solved for the orbit ``z[j]`` at every step's
entrance: ``z[j+1] = F_j(z[j])``, closed either over the turn (a ring: the ``free``
coordinates of ``z[0]`` equal those of ``F_last(z[-1])``) or by the initial conditions (a
line: every coordinate of ``z[0]`` is held). Once all the maps and their Jacobians ``E``
are evaluated side by side at the current ``z``, the linearised chain is solved with a
parallel prefix product (`parallel`), so nothing tracks the line sequentially.

`Chain` holds the index bookkeeping and the linear algebra shared by the closed-orbit
solver (`shooting.make_periodic_orbit`).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from .parallel import cumulative_affine


@dataclasses.dataclass(frozen=True)
class Chain:
    """Index sets of a chain of ``n_steps`` steps.

    Attributes:
        n_steps: number of steps.
        free: coordinates of ``z[0]`` closed over the turn (4D ring: ``(0, 1, 2, 3)``; 6D:
            all; a line: none).
        passive: coordinates no step's output depends on except their own (4D: ``t``),
            left out of the convergence test (a last linear step makes them exact).
    """

    n_steps: int
    free: tuple[int, ...]
    passive: tuple[int, ...] = ()

    @property
    def held(self) -> np.ndarray:
        return np.asarray([i for i in range(6) if i not in self.free], dtype=np.int32)

    @property
    def active(self) -> np.ndarray:
        return np.asarray([i for i in range(6) if i not in self.passive], dtype=np.int32)

    @property
    def free_idx(self) -> np.ndarray:
        return np.asarray(self.free, dtype=np.int32)

    def residuals(self, z, f):
        """``F[j] - z[j+1]`` for every step (the last against ``z[0]``: the closure)."""
        return f - jnp.concatenate([z[1:], z[:1]])

    def error(self, z, f, vfix):
        """Largest mismatch of the chain: links, closure (free, active coordinates), held."""
        active = self.active
        active_free = np.asarray([i for i in self.free if i not in self.passive], dtype=np.int32)
        r = self.residuals(z, f)
        err = jnp.max(jnp.abs(r[-1][active_free])) if len(active_free) else jnp.zeros((), z.dtype)
        if self.n_steps > 1:
            err = jnp.maximum(err, jnp.max(jnp.abs(r[:-1][:, active])))
        held = self.held
        if len(held):
            err = jnp.maximum(err, jnp.max(jnp.abs(z[0][held] - vfix[held])))
        return err

    def solve_prefix(self, m, c, dz0_held):
        """``dz`` (n_steps, 6) at every step's entrance from the prefix compositions
        ``(m, c)`` of the chain ``dz[j+1] = e[j] dz[j] + r[j]`` (`parallel.cumulative_affine`):
        the held coordinates of ``dz[0]`` are ``dz0_held``, the free ones close the turn."""
        free, held = self.free_idx, self.held
        dz0 = jnp.zeros(6, dtype=m.dtype)
        if len(free):
            mn, cn = m[-1], c[-1]
            b = -cn[free]
            if len(held):
                b = b - mn[free][:, held] @ dz0_held
            du = jnp.linalg.solve(mn[free][:, free] - jnp.eye(len(free), dtype=m.dtype), b)
            dz0 = dz0.at[free].set(du, unique_indices=True)
        if len(held):
            dz0 = dz0.at[held].set(dz0_held, unique_indices=True)
        after = jnp.einsum("nij,j->ni", m, dz0) + c
        return jnp.concatenate([dz0[None], after[:-1]])

    def linear_solve(self, e, r, dz0_held):
        """``(dz, m)``: the solution of ``dz[j+1] = e[j] dz[j] + r[j]`` with the turn closed
        (free coordinates) and ``dz[0][held] = dz0_held``, and ``m[j] = e[j] ... e[0]``."""
        m, c = cumulative_affine(e, r)
        return self.solve_prefix(m, c, dz0_held), m
