"""MAD-X error tables (``ESAVE`` output) read and applied to a `Lattice`.

EALIGN and EFCOMP errors assigned in a MAD-X file are read by ``Lattice.from_madx`` with the
sequence (per-placement overrides). An ``ESAVE`` table (TFS: ``NAME``, ``K0L``, ``K0SL``, ...,
``DX``, ``DY``, ``DS``, ``DPHI``, ``DTHETA``, ``DPSI``) applies the same errors to a lattice
imported without them: rows are matched to placements by name, in order (the n-th row named
``qf`` is the n-th placement of ``qf``). The rules are the importer's: ``DX``, ``DY`` add to
``dx``, ``dy`` and ``DPSI`` to ``dtilt``; integrated field errors ``KnL``/``KnSL`` (absolute:
MAD-X stores EFCOMP's relative errors converted) add to a thin multipole's ``knl``/``ksl`` and
to a pure thick quadrupole, sextupole or octupole's strength (divided by ``l``). A thin
multipole's dipole errors kick the orbit as in MAD-X: ``K0L`` adds to ``knl[0]`` with the
reference bend (``angle``) kept at the design ``knl[0]``, ``K0SL`` adds to ``ksl[0]``. ``DS``,
``DPHI``, ``DTHETA`` and other field errors (e.g. a dipole error on a thick quadrupole) are not
modelled: they are kept in the placement's ``extra["madx"]`` with a PhysicsWarning.
"""

from __future__ import annotations

import re
from collections import Counter

from ._madx_read import error_overrides
from .base import LatticeError
from .io_tfs import TfsTable, read_tfs

__all__ = ["apply_error_table", "read_error_table"]

_ALIGN = ("DX", "DY", "DS", "DPHI", "DTHETA", "DPSI")


def read_error_table(path) -> TfsTable:
    """Read an ESAVE table (a TFS file with a NAME column)."""
    tab = read_tfs(path)
    if "NAME" not in tab.columns:
        raise LatticeError(f"{path}: an error table needs a NAME column")
    return tab


def apply_error_table(lat, table) -> "object":
    """A copy of ``lat`` with the errors of ``table`` (a `TfsTable` or a path) applied."""
    if not isinstance(table, TfsTable):
        table = read_error_table(table)
    out = lat.copy()
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(out.line):
        positions.setdefault(name, []).append(i)
    seen: Counter = Counter()
    orders = sorted({int(m.group(1)) for c in table.columns
                     if (m := re.fullmatch(r"K(\d+)L", c))})
    overrides = dict(out.overrides)
    for r, raw in enumerate(table.columns["NAME"]):
        name = re.sub(r":\d+$", "", str(raw)).lower()
        if name.endswith(("$start", "$end")):
            continue
        if name not in positions:
            raise LatticeError(f"error table row {r + 1}: '{name}' is not placed in '{lat.name}'")
        seen[name] += 1
        if seen[name] > len(positions[name]):
            raise LatticeError(f"error table row {r + 1}: more rows for '{name}' than its "
                               f"{len(positions[name])} placements")
        i = positions[name][seen[name] - 1]
        row = {c: float(table.columns[c][r]) for c in table.columns if c != "NAME"}
        over = _row_overrides(out, i, row, orders)
        if over:
            overrides[i] = {**overrides.get(i, {}), **over}
    out.overrides = overrides
    return out


def _row_overrides(lat, i: int, row: dict, orders: list[int]) -> dict:
    align = {k.lower(): row[k] for k in ("DX", "DY", "DPSI", "DS", "DPHI", "DTHETA") if row.get(k)}
    n = max(orders, default=-1) + 1
    return error_overrides(lat.element_at(i), align, [row.get(f"K{k}L", 0.0) for k in range(n)],
                           [row.get(f"K{k}SL", 0.0) for k in range(n)],
                           f"placement {i} ('{lat.line[i]}')", stacklevel=4)
