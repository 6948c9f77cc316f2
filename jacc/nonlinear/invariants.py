"""The DN invariants ``H`` and ``I`` along tracked orbits, at the insert's centre."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jacc.lattices.nonlinear_insert import NonlinearInsert
from jacc.nonlinear._tbt import turn_by_turn
from jacc.nonlinear.dn import dn_hamiltonian, dn_second_invariant

__all__ = ["Invariants", "invariants", "normalise"]


@dataclasses.dataclass(frozen=True)
class Invariants:
    """``H`` [m] and ``I`` [m^2] per turn and particle, shape (n_turns, n); ``alive`` (n,)."""

    H: np.ndarray
    I: np.ndarray  # noqa: E741 - the name of the DN invariant
    alive: np.ndarray
    insert: NonlinearInsert

    def spread(self) -> tuple[np.ndarray, np.ndarray]:
        """Relative spreads ``(max - min) / |mean|`` of H and I per particle (n,) (NaN: lost)."""
        def rel(a):
            out = (a.max(0) - a.min(0)) / np.abs(a.mean(0))
            return np.where(self.alive, out, np.nan)
        return rel(self.H), rel(self.I)

    def plot(self, ax=None):
        """Relative deviation of H and I from their first-turn values against turn number."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
        turns = np.arange(1, self.H.shape[0] + 1)
        for a, v, name in zip(ax, (self.H, self.I), ("H", "I")):
            a.plot(turns, v / v[:1] - 1.0, lw=0.6)
            a.set_xlabel("turn")
            a.set_ylabel(f"{name} / {name}(turn 1) - 1")
        ax[0].set_title(f"DN invariants, t = {self.insert.t}, {self.insert.n_slices} slices")
        return ax


def normalise(coords, beta, alpha):
    """Normalised ``(x_N, p_xN, y_N, p_yN)`` [m^(1/2)] of coordinates (..., 6) with equal
    ``beta`` [m] and ``alpha`` in both planes (the DN insert's optics)."""
    c = jnp.asarray(coords)
    sb = jnp.sqrt(beta)
    return jnp.stack([c[..., 0] / sb, (alpha * c[..., 0] + beta * c[..., 1]) / sb,
                      c[..., 2] / sb, (alpha * c[..., 2] + beta * c[..., 3]) / sb], axis=-1)


@jax.jit
def _both(z, t, c):
    h = jax.vmap(lambda q: dn_hamiltonian(q, t, c))(z)
    i = jax.vmap(lambda q: dn_second_invariant(q, t, c))(z)
    return h, i


def invariants(lat, rp, x0, n_turns: int, insert: NonlinearInsert, *, centre: str = "ior",
               model=None) -> Invariants:
    """Track ``x0`` (n, 6) for ``n_turns`` and evaluate H and I at the insert's centre.

    Normalised coordinates use the insert's design optics at its centre (``beta_c`` from
    `NonlinearInsert.beta_centre`, ``alpha = 0``), the optics of the ring without the lenses.

    Args:
        lat, rp: a ring holding ``insert`` (e.g. `jacc.lattices.iota(nonlinear_insert=...)`).
        x0: (n, 6) initial coordinates at the lattice start.
        centre: the marker at the insert's centre (IOTA: ``ior``), checked against the bounds.
    """
    els = lat.elements
    s0 = els[lat.placements_of(insert.start)[0]].s_start
    s1 = els[lat.placements_of(insert.end)[0]].s_start
    sc = els[lat.placements_of(centre)[0]].s_start
    if abs(sc - 0.5 * (s0 + s1)) > 1e-9:
        raise ValueError(f"invariants: '{centre}' (s = {sc} m) is not the centre of the insert "
                         f"[{s0}, {s1}] m")
    coords, alive = turn_by_turn(lat, rp, x0, n_turns, at=centre, model=model)
    z = normalise(coords, insert.beta_centre(s1 - s0), 0.0)
    flat = z.reshape(-1, 4)
    h, i = _both(flat, insert.t, insert.c)
    shape = z.shape[:2]
    return Invariants(np.asarray(h).reshape(shape), np.asarray(i).reshape(shape), np.asarray(alive), insert)
