"""Frequency-map analysis: NAFF tunes of the two halves of a run and their diffusion."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jacc.nonlinear._tbt import turn_by_turn
from jacc.nonlinear.naff import naff_tunes

__all__ = ["FrequencyMap", "frequency_map", "tunes_from_tbt"]


@dataclasses.dataclass(frozen=True)
class FrequencyMap:
    """Tunes and diffusion of a grid of initial conditions.

    Attributes:
        x0: (n, 6) initial coordinates.
        qx, qy: (n,) tunes of the first half of the run.
        qx2, qy2: (n,) tunes of the second half.
        alive: (n,) survived the whole run.
        diffusion: (n,) ``log10(sqrt(dqx^2 + dqy^2))`` between the halves (NaN: lost).
    """

    x0: np.ndarray
    qx: np.ndarray
    qy: np.ndarray
    qx2: np.ndarray
    qy2: np.ndarray
    alive: np.ndarray
    n_turns: int

    @property
    def diffusion(self) -> np.ndarray:
        d = np.hypot(self.qx2 - self.qx, self.qy2 - self.qy)
        return np.where(self.alive, np.log10(np.maximum(d, 1e-16)), np.nan)

    def plot(self, axes=None, vmin: float = -10.0, vmax: float = -2.0):
        """Frequency map (tune space) and diffusion map (initial x, y), coloured by diffusion."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        ok = self.alive
        d = self.diffusion[ok]
        axes[0].scatter(self.qx[ok], self.qy[ok], c=d, s=3, cmap="jet", vmin=vmin, vmax=vmax)
        axes[0].set(xlabel="$Q_x$", ylabel="$Q_y$", title=f"frequency map ({self.n_turns} turns)")
        sc = axes[1].scatter(1e3 * self.x0[ok, 0], 1e3 * self.x0[ok, 2], c=d, s=6, cmap="jet",
                             vmin=vmin, vmax=vmax)
        axes[1].scatter(1e3 * self.x0[~ok, 0], 1e3 * self.x0[~ok, 2], c="lightgrey", s=6)
        axes[1].set(xlabel="x [mm]", ylabel="y [mm]", title="diffusion map")
        plt.colorbar(sc, ax=axes[1], label=r"$\log_{10}|\Delta Q|$")
        return axes


def tunes_from_tbt(coords, twiss_at=None):
    """``(qx, qy)`` (n,) by NAFF of turn-by-turn coordinates (n_turns, n, 6).

    ``twiss_at``: None (real positions: tunes folded into [0, 1/2]), or ``(betx, alfx, bety,
    alfy)`` [m] at the observation point: the complex normalised signal ``x_N - i p_N``
    gives tunes in [0, 1).
    """
    c = jnp.asarray(coords)
    if twiss_at is None:
        zx, zy = c[..., 0].T, c[..., 2].T
    else:
        bx, ax, by, ay = twiss_at
        zx = (c[..., 0] / jnp.sqrt(bx) - 1j * (ax * c[..., 0] + bx * c[..., 1]) / jnp.sqrt(bx)).T
        zy = (c[..., 2] / jnp.sqrt(by) - 1j * (ay * c[..., 2] + by * c[..., 3]) / jnp.sqrt(by)).T
    return np.asarray(naff_tunes(zx)), np.asarray(naff_tunes(zy))


def frequency_map(lat, rp, grid, n_turns: int, *, twiss_at=None, model=None, chunk: int = 2048,
                  progress: bool = True) -> FrequencyMap:
    """Frequency map of a ring: track ``grid`` (n, 6) from the lattice start for ``n_turns``
    (even), observed at the exit of placement 0 (Twiss row 1, for ``twiss_at``: see
    `tunes_from_tbt`), NAFF tunes of the first and second halves of the run.

    Particles go in chunks of ``chunk`` (the last one padded), so one program serves the scan.
    """
    from tqdm.auto import tqdm

    if n_turns % 2 or n_turns < 32:
        raise ValueError(f"frequency_map: n_turns must be even and >= 32, got {n_turns}")
    grid = np.atleast_2d(np.asarray(grid, float))
    n = grid.shape[0]
    size = min(chunk, n)
    out = []
    for i in tqdm(range(0, n, size), disable=not progress, desc="frequency map"):
        part = grid[i:i + size]
        pad = np.concatenate([part, np.zeros((size - part.shape[0], 6))]) if part.shape[0] < size else part
        coords, alive = turn_by_turn(lat, rp, pad, n_turns, at=0, model=model)
        h = n_turns // 2
        q1 = tunes_from_tbt(coords[:h], twiss_at)
        q2 = tunes_from_tbt(coords[h:], twiss_at)
        m = part.shape[0]
        out.append((q1[0][:m], q1[1][:m], q2[0][:m], q2[1][:m], np.asarray(alive)[:m]))
    qx, qy, qx2, qy2, alive = (np.concatenate(a) for a in zip(*out))
    return FrequencyMap(grid, qx, qy, qx2, qy2, alive, int(n_turns))
