"""TFS tables (MAD-X's Table File System format): read, write, and Twiss/survey conversion.

A TFS file is text: header lines ``@ NAME %type value``, one line ``* COL1 COL2 ...`` of
column names, one line ``$ %s %le ...`` of column types, then one row per line (strings in
double quotes). MAD-X writes upper-case names; this module writes them too and reads any case.

Twiss tables: MAD-X gives dispersion (``DX``, ``DPX``, ``DY``, ``DPY``) and chromaticities
(``DQ1``, ``DQ2``) per ``pt``; JACC's `Twiss` gives them per ``delta``, and ``D_delta = beta0
D_pt``. A Twiss table written with a reference particle is in MAD-X's convention (``PC`` and
``ENERGY`` in the header, GeV, give ``beta0`` back); written without, the header says
``DISPERSION_PER = "DELTA"`` and the columns are JACC's.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import LatticeError

__all__ = ["TfsTable", "read_tfs", "read_tfs_twiss", "survey_to_tfs", "twiss_to_tfs", "write_tfs"]

_TWISS_COLS = ("s", "betx", "bety", "alfx", "alfy", "mux", "muy", "dx", "dpx", "dy", "dpy",
               "x", "px", "y", "py")
_PER_PT = ("dx", "dpx", "dy", "dpy")
_SUMMARY = {"qx": "Q1", "qy": "Q2", "dqx": "DQ1", "dqy": "DQ2", "momentum_compaction": "ALFA"}


@dataclass
class TfsTable:
    """A TFS table: ``headers`` (name -> value) and ``columns`` (name -> array), upper-case names."""

    headers: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)

    def __getitem__(self, name: str):
        key = name.upper()
        if key in self.columns:
            return self.columns[key]
        if key in self.headers:
            return self.headers[key]
        raise KeyError(f"TFS table has no column or header {name!r}; columns: {list(self.columns)}")

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def to_pandas(self):
        """A ``pandas.DataFrame`` of the columns, headers in ``df.attrs``."""
        import pandas as pd

        df = pd.DataFrame({k: list(v) if v.dtype == object else v for k, v in self.columns.items()})
        df.attrs.update(self.headers)
        return df


# ---------------------------------------------------------------------------------------- read
def _value(text: str, kind: str, where: str):
    kind = kind.lower()
    try:
        if kind.endswith("s"):
            return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
        if kind.endswith("d"):
            return int(text)
        return float(text)
    except ValueError:
        raise LatticeError(f"{where}: {text!r} is not a valid {kind} value") from None


def read_tfs(path) -> TfsTable:
    """Read a TFS file; errors name the file, the line and the problem."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise LatticeError(f"TFS file '{path}' does not exist")
    headers, names, kinds, rows = {}, None, None, []
    for no, line in enumerate(path.read_text().splitlines(), 1):
        where = f"{path}, line {no}"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            parts = shlex.split(stripped, posix=False)
        except ValueError as err:
            raise LatticeError(f"{where}: {err}") from None
        if parts[0] == "@":
            if len(parts) < 4:
                raise LatticeError(f"{where}: a header needs '@ NAME %type value', got {stripped!r}")
            headers[parts[1].upper()] = _value(" ".join(parts[3:]), parts[2], where)
        elif parts[0] == "*":
            names = [p.upper() for p in parts[1:]]
        elif parts[0] == "$":
            kinds = parts[1:]
            if names is None or len(kinds) != len(names):
                raise LatticeError(f"{where}: the '$' line needs one type per column of the '*' line")
        else:
            if kinds is None:
                raise LatticeError(f"{where}: a data row before the '*' and '$' lines")
            if len(parts) != len(names):
                raise LatticeError(f"{where}: {len(parts)} values for {len(names)} columns")
            rows.append([_value(p, k, where) for p, k in zip(parts, kinds)])
    if names is None:
        raise LatticeError(f"{path}: no column line ('* NAME ...'): not a TFS table")
    columns = {}
    for j, (n, k) in enumerate(zip(names, kinds)):
        vals = [r[j] for r in rows]
        columns[n] = np.array(vals, dtype=object if k.lower().endswith("s") else
                              (int if k.lower().endswith("d") else float))
    return TfsTable(headers, columns)


# ---------------------------------------------------------------------------------------- write
def _fmt(v) -> tuple[str, str]:
    if isinstance(v, str):
        return "%s", '"' + v.replace('"', "'") + '"'
    if isinstance(v, (bool, np.bool_)):
        return "%d", str(int(v))
    if isinstance(v, (int, np.integer)):
        return "%d", str(int(v))
    return "%le", repr(float(v)) if math.isfinite(float(v)) else "nan"


def write_tfs(table: TfsTable, path) -> None:
    """Write ``table`` as a TFS file that MAD-X tools and ``tfs-pandas`` read."""
    lines = []
    for k, v in table.headers.items():
        kind, text = _fmt(v)
        lines.append(f"@ {k.upper():<24s} {kind:<5s} {text}")
    names = [n.upper() for n in table.columns]
    cols = [np.asarray(table.columns[n]) for n in table.columns]
    kinds = ["%s" if c.dtype.kind in "OUS" else ("%d" if c.dtype.kind in "iub" else "%le")
             for c in cols]
    width = [max(18, len(n) + 1) for n in names]
    lines.append("* " + " ".join(f"{n:>{w}s}" for n, w in zip(names, width)))
    lines.append("$ " + " ".join(f"{k:>{w}s}" for k, w in zip(kinds, width)))
    for i in range(len(cols[0]) if cols else 0):
        cells = []
        for c, k, w in zip(cols, kinds, width):
            v = c[i]
            text = _fmt(str(v))[1] if k == "%s" else (str(int(v)) if k == "%d" else _fmt(float(v))[1])
            cells.append(f"{text:>{w}s}")
        lines.append("  " + " ".join(cells))
    Path(os.fspath(path)).write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------- optics
def twiss_to_tfs(tw, reference=None, title: str = "TWISS") -> TfsTable:
    """A TFS table of a JACC `Twiss` (MAD-X's convention when ``reference`` is given).

    Args:
        tw: a `jacc.Twiss`.
        reference: the `ReferenceParticle`; with it dispersion and chromaticity are per ``pt``
            as MAD-X's, and ``MASS``, ``CHARGE``, ``ENERGY``, ``PC``, ``GAMMA`` [GeV] head the file.
    """
    scale = 1.0
    headers: dict = {"TYPE": title, "TITLE": title, "ORIGIN": "JACC"}
    if reference is not None:
        scale = 1.0 / float(reference.beta0)
        headers.update(MASS=float(reference.mass0) * 1e-9, CHARGE=float(reference.charge),
                       ENERGY=float(reference.energy0) * 1e-9, PC=float(reference.p0c) * 1e-9,
                       GAMMA=float(reference.gamma0))
    else:
        headers["DISPERSION_PER"] = "DELTA"
    for key, madx in _SUMMARY.items():
        v = getattr(tw, key, None)
        if v is not None:
            headers[madx] = float(v) * (scale if key in ("dqx", "dqy") else 1.0)
    columns = {"NAME": np.array(tw.name, dtype=object)}
    for c in _TWISS_COLS:
        columns[c.upper()] = np.asarray(getattr(tw, c), dtype=float) * (scale if c in _PER_PT else 1.0)
    return TfsTable(headers, columns)


def read_tfs_twiss(path):
    """A MAD-X (or JACC) TFS Twiss table as a JACC `Twiss` (dispersion per ``delta``).

    ``beta0 = PC / ENERGY`` from the header converts MAD-X's per-``pt`` columns; a table whose
    header says ``DISPERSION_PER = "DELTA"`` is taken as is. Rows are the file's rows
    (MAD-X's ``$start`` and ``$end`` markers included); names lose MAD-X's ``:n`` suffix.
    """
    from jacc.containers import Twiss

    tab = read_tfs(path)
    if str(tab.headers.get("DISPERSION_PER", "")).upper() == "DELTA":
        beta0 = 1.0
    elif "PC" in tab.headers and "ENERGY" in tab.headers:
        beta0 = float(tab.headers["PC"]) / float(tab.headers["ENERGY"])
    else:
        raise LatticeError(f"{path}: a Twiss table needs PC and ENERGY headers (MAD-X) or "
                           "DISPERSION_PER = \"DELTA\" to know its dispersion convention")
    missing = [c.upper() for c in ("s", "betx", "bety", "alfx", "alfy", "mux", "muy")
               if c.upper() not in tab.columns]
    if missing or "NAME" not in tab.columns:
        raise LatticeError(f"{path}: not a Twiss table: columns {missing or ['NAME']} missing")
    n = len(tab)
    cols = {c: (tab.columns[c.upper()].astype(float) * (beta0 if c in _PER_PT else 1.0)
                if c.upper() in tab.columns else np.zeros(n)) for c in _TWISS_COLS}
    summary = {k: float(tab.headers[m]) * (beta0 if k in ("dqx", "dqy") else 1.0)
               for k, m in _SUMMARY.items() if m in tab.headers}
    names = tuple(re.sub(r":\d+$", "", str(v)).lower() for v in tab.columns["NAME"])
    return Twiss(name=names, **cols, **summary)


def survey_to_tfs(sv) -> TfsTable:
    """A TFS table of a `Survey` (MAD-X SURVEY columns)."""
    columns = {"NAME": np.array(sv.name, dtype=object)}
    for c in ("s", "x", "y", "z", "theta", "phi", "psi"):
        columns[c.upper()] = np.asarray(sv[c], dtype=float)
    return TfsTable({"TYPE": "SURVEY", "TITLE": "SURVEY", "ORIGIN": "JACC"}, columns)
