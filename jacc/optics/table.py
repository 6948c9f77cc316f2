"""Tables and plots of a `Twiss`: row selection, pandas, and the optics plot with layout."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np

from jacc.containers import TWISS_COLUMNS, TWISS_MODE_COLUMNS, Twiss


class _Rows:
    """``tw.rows[...]``: select rows by regular expression on names, index, slice or mask."""

    def __init__(self, tw: Twiss):
        self._tw = tw

    def __getitem__(self, key) -> Twiss:
        tw = self._tw
        if isinstance(key, str):
            rx = re.compile(key)
            idx = np.array([i for i, n in enumerate(tw.name) if rx.fullmatch(n)], dtype=int)
            if idx.size == 0:
                raise KeyError(f"no Twiss row name matches {key!r}")
        else:
            idx = np.arange(len(tw))[key]
            idx = np.atleast_1d(idx)
        cols = {c: getattr(tw, c)[idx] for c in TWISS_COLUMNS + TWISS_MODE_COLUMNS
                if getattr(tw, c) is not None}
        summary = {k: getattr(tw, k) for k in ("qx", "qy", "dqx", "dqy", "momentum_compaction")}
        return Twiss(name=tuple(tw.name[i] for i in idx), **cols, **summary)


def rows(tw: Twiss) -> _Rows:
    return _Rows(tw)


def to_pandas(tw: Twiss):
    """The columns as a ``pandas.DataFrame`` (one row per Twiss row); summary in ``attrs``."""
    import pandas as pd

    data = {"name": list(tw.name)}
    data.update({c: np.asarray(getattr(tw, c)) for c in tw.columns()})
    df = pd.DataFrame(data)
    df.attrs.update({k: float(getattr(tw, k)) for k in ("qx", "qy", "dqx", "dqy", "momentum_compaction")
                     if getattr(tw, k) is not None})
    return df


_LAYOUT_STYLE = {"Quadrupole": ("tab:red", 0.8), "SBend": ("tab:blue", 0.5), "RBend": ("tab:blue", 0.5),
                 "Sextupole": ("tab:green", 0.6), "Octupole": ("tab:purple", 0.5),
                 "Solenoid": ("tab:orange", 0.5), "RFCavity": ("tab:gray", 0.5)}


def plot(tw: Twiss, lattice=None, *, title: str | None = None, figsize=(11, 6)):
    """Beta functions and horizontal dispersion along s, with the magnet layout above.

    Args:
        lattice: the `jacc.Lattice` the table belongs to, for the layout (quadrupoles drawn up
            or down by the sign of ``k1``); without it the layout is left out.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    s = np.asarray(tw.s)
    fig, (ax_l, ax) = plt.subplots(2, 1, sharex=True, figsize=figsize,
                                   gridspec_kw={"height_ratios": [1, 5], "hspace": 0.05})
    ax.plot(s, np.asarray(tw.betx), label=r"$\beta_x$", color="tab:blue")
    ax.plot(s, np.asarray(tw.bety), label=r"$\beta_y$", color="tab:red")
    ax.set_xlabel("s [m]")
    ax.set_ylabel(r"$\beta$ [m]")
    ax2 = ax.twinx()
    ax2.plot(s, np.asarray(tw.dx), label=r"$D_x$", color="tab:green", ls="--")
    ax2.set_ylabel(r"$D_x$ [m]")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], loc="upper right")
    ax_l.axhline(0, color="k", lw=0.5)
    if lattice is not None:
        for p in lattice.elements:
            style = _LAYOUT_STYLE.get(p.element_name)
            if style is None:
                continue
            color, h = style
            sign = np.sign(getattr(p, "k1", 0.0) or 0.0) if p.element_name == "Quadrupole" else 0
            bottom = 0 if sign > 0 else (-h if sign < 0 else -h / 2)
            width = max(p.s_end - p.s_start, 0.02)
            ax_l.add_patch(plt.Rectangle((p.s_start, bottom), width, h, color=color))
    ax_l.set_ylim(-1, 1)
    ax_l.set_yticks([])
    summary = ""
    if tw.qx is not None:
        summary = f"Qx = {float(tw.qx):.5f}, Qy = {float(tw.qy):.5f}"
        if tw.dqx is not None:
            summary += f", Q'x = {float(tw.dqx):.3f}, Q'y = {float(tw.dqy):.3f}"
    ax_l.set_title(title or summary)
    return fig
