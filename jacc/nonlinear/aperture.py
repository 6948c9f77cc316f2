"""Dynamic aperture: survival of a polar grid of initial amplitudes over N turns."""

from __future__ import annotations

import dataclasses

import numpy as np

from jacc.engine import track
from jacc.particles import pt_from_delta

__all__ = ["DynamicAperture", "dynamic_aperture", "polar_grid"]

# a particle beyond this amplitude [m] counts as lost even if still finite (xtrack's global
# limit XTRACK_GLOBAL_XY_LIMIT is 1 m)
XY_LIMIT = 1.0


def polar_grid(radii, angles, pt: float = 0.0) -> np.ndarray:
    """Initial coordinates (n_angles * n_radii, 6), angle-major: ``x = r cos a``, ``y = r sin a``
    [m], energy deviation ``pt`` (MAD-X's)."""
    r, a = np.meshgrid(np.asarray(radii, float), np.asarray(angles, float))
    x0 = np.zeros((r.size, 6))
    x0[:, 0], x0[:, 2], x0[:, 5] = (r * np.cos(a)).ravel(), (r * np.sin(a)).ravel(), pt
    return x0


@dataclasses.dataclass(frozen=True)
class DynamicAperture:
    """Survival on a polar grid.

    Attributes:
        radii: (n_r,) amplitudes [m]; angles: (n_a,) [rad]; deltas: (n_d,) momentum deviations.
        survived: (n_d, n_a, n_r) bool.
        n_turns: turns tracked.
    """

    radii: np.ndarray
    angles: np.ndarray
    deltas: np.ndarray
    survived: np.ndarray
    n_turns: int

    @property
    def steps(self) -> np.ndarray:
        """(n_d, n_a) index of the last radius below which every particle of the ray survived
        (-1: the first radius is lost)."""
        lost = ~self.survived
        first = np.where(lost.any(-1), lost.argmax(-1), self.survived.shape[-1])
        return first - 1

    @property
    def aperture(self) -> np.ndarray:
        """(n_d, n_a) dynamic aperture [m] per ray: the largest radius of the surviving run."""
        s = self.steps
        return np.where(s >= 0, self.radii[np.clip(s, 0, None)], 0.0)

    def plot(self, ax=None):
        """DA boundaries in the x-y plane, one curve per momentum deviation."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
        for d, da in zip(self.deltas, self.aperture):
            ax.plot(1e3 * da * np.cos(self.angles), 1e3 * da * np.sin(self.angles), "o-", ms=3,
                    label=f"delta = {d:.1e}")
        ax.set(xlabel="x [mm]", ylabel="y [mm]", title=f"dynamic aperture, {self.n_turns} turns")
        ax.legend(fontsize=8)
        return ax


def survival(lat, rp, x0, n_turns: int, model=None) -> np.ndarray:
    """(n,) whether each particle survives ``n_turns`` (aperture, non-finite and 1 m limits)."""
    res = track(lat, rp, np.asarray(x0, float), int(n_turns), model=model, record=None)
    x = np.asarray(res.x)
    inside = (np.abs(x[:, 0]) < XY_LIMIT) & (np.abs(x[:, 2]) < XY_LIMIT)
    return np.asarray(res.alive) & inside & np.isfinite(x).all(1)


def dynamic_aperture(lat, rp, radii, angles, n_turns: int, *, deltas=(0.0,), model=None,
                     progress: bool = True) -> DynamicAperture:
    """Survival of a polar grid (``radii`` [m] x ``angles`` [rad]) over ``n_turns``, for each
    momentum deviation ``delta = (p - p0) / p0`` in ``deltas`` (converted to ``pt``; the
    off-momentum closed orbit is not added: amplitudes are about the design orbit).

    One batch per momentum deviation: all rays and radii are tracked together.
    """
    from tqdm.auto import tqdm

    radii, angles = np.asarray(radii, float), np.asarray(angles, float)
    out = []
    for d in tqdm(np.atleast_1d(deltas), disable=not progress or len(np.atleast_1d(deltas)) < 2,
                  desc="dynamic aperture"):
        pt = float(pt_from_delta(float(d), rp.beta0))
        ok = survival(lat, rp, polar_grid(radii, angles, pt), n_turns, model)
        out.append(ok.reshape(angles.size, radii.size))
    return DynamicAperture(radii, angles, np.atleast_1d(np.asarray(deltas, float)), np.stack(out), int(n_turns))
