"""Table views of a Twiss: row selection, pandas, and the optics plot with the magnet layout.

`jacc.Twiss.rows`, ``to_pandas()`` and ``plot()`` call these functions (imported lazily, so
the container needs neither pandas nor matplotlib).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

_OCCURRENCE = re.compile(r"^(.+):(\d+)$")


def _column_fields(tw):
    n = len(tw)
    for f in dataclasses.fields(tw):
        if f.metadata.get("static", False) or f.name == "name":
            continue
        v = getattr(tw, f.name)
        if v is not None and getattr(v, "ndim", 0) >= 1 and v.shape[0] == n:
            yield f.name, v


def select(tw, idx):
    """A table of the same type holding the rows ``idx`` (integer array); summaries kept."""
    idx = np.asarray(idx, dtype=int)
    updates = {k: v[idx] for k, v in _column_fields(tw)}
    return dataclasses.replace(tw, name=tuple(tw.name[i] for i in idx), **updates)


def _match(names, key: str) -> np.ndarray:
    m = _OCCURRENCE.match(key)
    if m and m.group(1) in names:  # "qf:3": the third row named qf (MAD-X's name:n)
        hits = [i for i, n in enumerate(names) if n == m.group(1)]
        k = int(m.group(2))
        if not 1 <= k <= len(hits):
            raise KeyError(f"Twiss rows: {key!r}: '{m.group(1)}' has {len(hits)} rows")
        return np.array([hits[k - 1]])
    try:
        rx = re.compile(key)
    except re.error as err:
        raise KeyError(f"Twiss rows: {key!r} is not a valid regular expression ({err})") from None
    return np.array([i for i, n in enumerate(names) if rx.fullmatch(n)], dtype=int)


class _Rows:
    """``tw.rows[...]``: rows by regular expression on names (full match, ``"qf.*"``), by
    ``"name:n"`` (n-th row of that name), by index, slice, integer list or boolean mask."""

    def __init__(self, tw):
        self._tw = tw

    def __getitem__(self, key):
        tw = self._tw
        if isinstance(key, str):
            idx = _match(tw.name, key)
            if idx.size == 0:
                raise KeyError(f"no Twiss row name matches {key!r}")
        else:
            idx = np.atleast_1d(np.arange(len(tw))[key])
        return select(tw, idx)


def rows(tw) -> _Rows:
    return _Rows(tw)


def to_pandas(tw):
    """The columns as a ``pandas.DataFrame`` (one row per Twiss row); scalars in ``attrs``."""
    import pandas as pd

    data = {"name": list(tw.name)}
    data.update({c: np.asarray(getattr(tw, c)) for c in tw.columns()})
    df = pd.DataFrame(data)
    for f in dataclasses.fields(tw):
        v = getattr(tw, f.name)
        if not f.metadata.get("static", False) and v is not None and getattr(v, "ndim", -1) == 0:
            df.attrs[f.name] = float(v)
    return df


_STYLE = {  # kind: (colour, height, vertical placement)
    "Quadrupole": ("tab:red", 0.8, "sign"),
    "SBend": ("tab:blue", 0.6, "centre"),
    "RBend": ("tab:blue", 0.6, "centre"),
    "Sextupole": ("tab:green", 0.5, "sign"),
    "Octupole": ("tab:purple", 0.4, "centre"),
    "Solenoid": ("tab:orange", 0.5, "centre"),
    "RFCavity": ("tab:gray", 0.5, "centre"),
    "NonlinearLens": ("tab:brown", 0.5, "centre"),
    "HKicker": ("k", 0.3, "centre"), "VKicker": ("k", 0.3, "centre"), "HVCorrector": ("k", 0.3, "centre"),
}


def _layout_from_lattice(lattice):
    out = []
    for p in lattice.elements:
        f = {"Quadrupole": "k1", "Sextupole": "k2"}.get(p.element_name)
        sign = float(np.sign(getattr(p, f, 0.0) or 0.0)) if f else 0.0
        out.append((p.element_name, p.s_start, p.s_end, sign))
    return tuple(out)


def draw_layout(ax, layout, *, min_width: float = 0.0):
    """Draw magnets as boxes on ``ax``: quadrupoles above the axis when focusing (k1 > 0),
    below when defocusing, bends centred, sextupoles by the sign of k2."""
    import matplotlib.patches as mpatches

    ax.axhline(0, color="k", lw=0.5)
    for kind, s0, s1, sign in layout:
        style = _STYLE.get(kind)
        if style is None:
            continue
        colour, h, where = style
        if where == "sign" and sign != 0:
            bottom = 0.0 if sign > 0 else -h
        else:
            bottom = -h / 2
        width = max(s1 - s0, min_width)
        ax.add_patch(mpatches.Rectangle((s0, bottom), width, h, facecolor=colour, edgecolor=colour, lw=0.5))
    ax.set_ylim(-1, 1)
    ax.set_yticks([])


def plot(tw, lattice=None, *, title: str | None = None, figsize=(11, 6), dispersion: bool = True):
    """Beta functions (and dispersion on a second axis) along s, magnet layout above.

    Args:
        tw: a Twiss table (`jacc.twiss` attaches its layout; else pass ``lattice``).
        lattice: a `jacc.Lattice` to draw the layout from (overrides the table's).
        title: figure title (default: tunes and chromaticities when known).
        dispersion: draw ``dx`` (and ``dy`` when nonzero) on a right-hand axis.

    Returns:
        the matplotlib figure (axes: layout, betas, and dispersion when drawn).
    """
    import matplotlib.pyplot as plt

    s = np.asarray(tw.s)
    fig, (ax_l, ax) = plt.subplots(2, 1, sharex=True, figsize=figsize,
                                   gridspec_kw={"height_ratios": [1, 5], "hspace": 0.05})
    ax.plot(s, np.asarray(tw.betx), label=r"$\beta_x$", color="tab:blue")
    ax.plot(s, np.asarray(tw.bety), label=r"$\beta_y$", color="tab:red")
    ax.set_xlabel("s [m]")
    ax.set_ylabel(r"$\beta$ [m]")
    lines = list(ax.get_lines())
    if dispersion:
        ax2 = ax.twinx()
        ax2.plot(s, np.asarray(tw.dx), label=r"$D_x$", color="tab:green", ls="--")
        dy = np.asarray(tw.dy)
        if np.any(np.abs(dy) > 1e-9):
            ax2.plot(s, dy, label=r"$D_y$", color="tab:olive", ls="--")
        ax2.set_ylabel("D [m]")
        lines += list(ax2.get_lines())
    ax.legend(lines, [ln.get_label() for ln in lines], loc="upper right")
    lay = _layout_from_lattice(lattice) if lattice is not None else getattr(tw, "layout", None)
    draw_layout(ax_l, lay or (), min_width=1e-3 * (s[-1] - s[0] if len(s) > 1 else 1.0))
    ax.set_xlim(s[0], s[-1])
    if title is None:
        title = ""
        if tw.qx is not None:
            title = f"Qx = {float(tw.qx):.5f}, Qy = {float(tw.qy):.5f}"
            if tw.dqx is not None:
                title += f", Q'x = {float(tw.dqx):.3f}, Q'y = {float(tw.dqy):.3f}"
    ax_l.set_title(title)
    return fig
