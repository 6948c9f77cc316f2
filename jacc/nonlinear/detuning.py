"""Amplitude-dependent tune shift: from tracking (NAFF) and to first order from the optics.

First-order theory for thin octupolar kicks (``knl[3] = K3L`` [1/m^3], potential
``K3L (x^4 - 6 x^2 y^2 + y^4) / 24``), averaged over the betatron phases with
``x = sqrt(2 Jx betx) cos(phi)``:

    dQx/dJx = sum K3L betx^2 / (16 pi),  dQy/dJy = sum K3L bety^2 / (16 pi),
    dQx/dJy = dQy/dJx = -sum K3L betx bety / (8 pi),

with ``J`` the action [m] (``2 J beta = amplitude^2``). Thick octupoles count as ``K3L = k3 l``
at their centre.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jacc.nonlinear._tbt import turn_by_turn
from jacc.nonlinear.fma import tunes_from_tbt

__all__ = ["Detuning", "detuning", "octupole_detuning"]


@dataclasses.dataclass(frozen=True)
class Detuning:
    """Tunes against action, with the fitted slopes.

    Attributes:
        jx, jy: (n,) actions [m]; qx, qy: (n,) NAFF tunes.
        plane: ``"x"`` or ``"y"``: the plane whose action was scanned.
        dqx_dj, dqy_dj: fitted slopes [1/m] of qx and qy against the scanned action.
    """

    jx: np.ndarray
    jy: np.ndarray
    qx: np.ndarray
    qy: np.ndarray
    plane: str
    dqx_dj: float
    dqy_dj: float

    def plot(self, ax=None):
        """Tunes against the scanned action, with the linear fits."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
        j = self.jx if self.plane == "x" else self.jy
        for q, slope, lab in ((self.qx, self.dqx_dj, "Q_x"), (self.qy, self.dqy_dj, "Q_y")):
            ax.plot(1e9 * j, q - q[0], "o", ms=4, label=f"${lab}$")
            ax.plot(1e9 * j, slope * (j - j[0]), "-", lw=0.8)
        ax.set(xlabel=f"$J_{self.plane}$ [nm]", ylabel="tune shift", title="detuning with amplitude")
        ax.legend()
        return ax


def detuning(lat, rp, twiss, actions, n_turns: int = 1024, *, plane: str = "x", model=None) -> Detuning:
    """Tunes of particles launched at ``actions`` [m] in one plane (the other plane at a
    thousandth of the smallest action), from tracking and NAFF; linear fits against action.

    Args:
        twiss: `jacc.twiss(lat, rp)`: the optics at the lattice start give the launch and
            the normalised signals (first row) and the exit of placement 0 (second row).
    """
    if plane not in ("x", "y"):
        raise ValueError(f"detuning: plane must be 'x' or 'y', got {plane!r}")
    a = np.asarray(actions, float)
    small = np.full_like(a, 1e-3 * a.min())
    jx, jy = (a, small) if plane == "x" else (small, a)
    bx, ax_, by, ay = (float(np.asarray(twiss.betx)[0]), float(np.asarray(twiss.alfx)[0]),
                       float(np.asarray(twiss.bety)[0]), float(np.asarray(twiss.alfy)[0]))
    x0 = np.zeros((a.size, 6))
    x0[:, 0], x0[:, 1] = np.sqrt(2 * jx * bx), -ax_ * np.sqrt(2 * jx / bx)
    x0[:, 2], x0[:, 3] = np.sqrt(2 * jy * by), -ay * np.sqrt(2 * jy / by)
    coords, _ = turn_by_turn(lat, rp, x0, n_turns, at=0, model=model)
    at = tuple(float(np.asarray(v)[1]) for v in (twiss.betx, twiss.alfx, twiss.bety, twiss.alfy))
    qx, qy = tunes_from_tbt(coords, at)
    j = jx if plane == "x" else jy
    return Detuning(jx, jy, qx, qy, plane, float(np.polyfit(j, qx, 1)[0]), float(np.polyfit(j, qy, 1)[0]))


def octupole_detuning(lat, twiss) -> np.ndarray:
    """First-order detuning matrix ``[[dQx/dJx, dQx/dJy], [dQy/dJx, dQy/dJy]]`` [1/m] of the
    lattice's octupolar terms (thin ``Multipole`` ``knl[3]``, thick ``Octupole`` ``k3``).

    ``twiss`` rows are the start then each element exit; a thin element's optics are those
    at its exit, a thick octupole's the average of its entrance and exit.
    """
    bx, by = np.asarray(twiss.betx), np.asarray(twiss.bety)
    m = np.zeros((2, 2))
    for i, el in enumerate(lat.elements):
        d = lat.definitions[lat.line[i]]
        if d.element_name == "Multipole" and len(d.knl) > 3:
            k3l, b1, b2 = d.knl[3], bx[i + 1], by[i + 1]
        elif d.element_name == "Octupole":
            k3l, b1, b2 = d.k3 * d.l, 0.5 * (bx[i] + bx[i + 1]), 0.5 * (by[i] + by[i + 1])
        else:
            continue
        m += k3l * np.array([[b1 * b1 / 16, -b1 * b2 / 8], [-b1 * b2 / 8, b2 * b2 / 16]]) / np.pi
    return m
