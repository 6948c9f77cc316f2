"""Floor coordinates of a lattice as MAD-X SURVEY computes them, and a footprint plot.

MAD-X's conventions: the global frame has ``z`` along the initial beam direction, ``x``
horizontal and ``y`` vertical; ``theta`` is the azimuth (rotation about ``y``), ``phi`` the
elevation (about ``x``), ``psi`` the roll (about ``z``); the orientation matrix is
``W = Theta(theta) Phi(phi) Psi(psi)``. An element of length ``L`` moves the reference by
``W R`` and turns it by ``W <- W S``; a bend of angle ``a`` (arc ``L``, radius ``rho = L/a``)
has ``R = (rho (cos a - 1), 0, rho sin a)`` and ``S`` a rotation by ``-a`` about ``y``, both
rolled by the element's design ``tilt``; a thin multipole turns the reference by its
``angle``, or by ``knl[0]`` without one (as MAD-X), without moving it. Misalignments (``dx``, ``dy``, ``dtilt``) do not move
the reference orbit (as MAD-X, which surveys the design).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .elements import Multipole, RBend, SBend

__all__ = ["Survey", "survey"]

COLUMNS = ("s", "x", "y", "z", "theta", "phi", "psi")


@dataclass(frozen=True)
class Survey:
    """Floor coordinates: the lattice start, then each placement's exit (MAD-X SURVEY rows).

    Attributes:
        name: placement name of each row (``"start"`` for the first).
        s: path length [m]. x, y, z: position [m]. theta, phi, psi: angles [rad].
    """

    name: tuple[str, ...]
    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    theta: np.ndarray
    phi: np.ndarray
    psi: np.ndarray

    def __len__(self) -> int:
        return len(self.name)

    def __getitem__(self, column: str):
        if column == "name" or column in COLUMNS:
            return getattr(self, column)
        raise KeyError(f"Survey has no column {column!r}; columns: {('name',) + COLUMNS}")

    def columns(self) -> tuple[str, ...]:
        return ("name",) + COLUMNS

    def to_pandas(self):
        """The table as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame({c: list(self.name) if c == "name" else self[c] for c in self.columns()})

    def plot(self, ax=None, annotate: bool = False):
        """Footprint in the horizontal plane (z along the abscissa, x the ordinate)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6))
        ax.plot(self.z, self.x, "-", lw=1.5)
        ax.plot(self.z[:1], self.x[:1], "o", label="start")
        if annotate:
            for n, zz, xx in zip(self.name, self.z, self.x):
                ax.annotate(n, (zz, xx), fontsize=6)
        ax.set_xlabel("z [m]")
        ax.set_ylabel("x [m]")
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(loc="best")
        return ax


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _bend_angle(el) -> float:
    """The angle by which ``el`` turns the reference: a bend's ``angle``; a thin multipole's
    ``angle`` or, without one, ``knl[0]`` (MAD-X SURVEY); 0 for anything else."""
    if isinstance(el, (SBend, RBend)):
        return el.angle
    if isinstance(el, Multipole):
        return el.angle if el.angle is not None else (el.knl[0] if el.knl else 0.0)
    return 0.0


def _element_step(el) -> tuple[np.ndarray, np.ndarray | None]:
    """``(R, S)`` of one element in its own frame (``S`` None: no turn)."""
    length = el.path_length
    a = _bend_angle(el)
    if a != 0.0:
        rho = length / a
        r = np.array([rho * (math.cos(a) - 1.0), 0.0, rho * math.sin(a)])
        s = _rot_y(-a)
        if el.tilt != 0.0:
            t = _rot_z(el.tilt)
            r, s = t @ r, t @ s @ t.T
        return r, s
    return np.array([0.0, 0.0, length]), None


def _proxim(a: float, ref: float) -> float:
    """``a`` shifted by a multiple of 2 pi to lie closest to ``ref`` (MAD-X keeps angles continuous)."""
    return a + 2.0 * math.pi * round((ref - a) / (2.0 * math.pi))


def _angles(w: np.ndarray, prev: tuple[float, float, float]) -> tuple[float, float, float]:
    arg = math.hypot(w[1, 0], w[1, 1])
    phi = math.atan2(w[1, 2], arg)
    if arg > 1e-20:
        theta = _proxim(math.atan2(w[0, 2], w[2, 2]), prev[0])
        psi = _proxim(math.atan2(w[1, 0], w[1, 1]), prev[2])
    else:  # looking straight up or down: only theta - psi is defined; keep theta
        theta = prev[0]
        psi = _proxim(theta - math.atan2(-w[0, 1], w[0, 0]), prev[2])
    return theta, phi, psi


def survey(lat, *, x0: float = 0.0, y0: float = 0.0, z0: float = 0.0, theta0: float = 0.0,
           phi0: float = 0.0, psi0: float = 0.0) -> Survey:
    """Floor coordinates of ``lat`` (``lat.survey()``), as MAD-X ``SURVEY``.

    Args:
        lat: the lattice.
        x0, y0, z0: initial position [m]. theta0, phi0, psi0: initial angles [rad] (MAD-X's
            ``survey, x0=..., theta0=...``).

    Returns:
        A `Survey`: one row for the start, then one per placement (its exit).
    """
    w = _rot_y(theta0) @ _rot_x(phi0) @ _rot_z(psi0)
    v = np.array([x0, y0, z0], dtype=float)
    ang = (theta0, phi0, psi0)
    names, rows = ["start"], [(lat.s0, *v, *ang)]
    s = lat.s0
    for i, name in enumerate(lat.line):
        el = lat.element_at(i)
        r, rot = _element_step(el)
        v = v + w @ r
        if rot is not None:
            w = w @ rot
            ang = _angles(w, ang)
        s += el.path_length
        names.append(name)
        rows.append((s, *v, *ang))
    cols = np.array(rows, dtype=float).T
    return Survey(tuple(names), *cols)
