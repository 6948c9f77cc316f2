"""MAD-X SEQEDIT operations on a `Lattice`: cycle, install, remove, replace, reflect.

Each returns a new lattice. Install, remove and replace work as MAD-X does on a sequence:
elements keep their positions and the drifts between them are recomputed (plain drifts, those
without aperture or overrides, are the gaps; new gaps get definitions ``drift_<length>``).
Knobs and expressions are kept for the definitions still placed.
"""

from __future__ import annotations

import re

from .base import Element, LatticeError
from .elements import Drift

__all__ = ["cycle", "install", "reflect", "remove", "replace"]

_GAP_TOL = 1e-12   # [m] gaps below this are rounding, not drifts
_OVERLAP_TOL = 1e-9  # [m] overlaps below this are rounding


def _placement(lat, key: str) -> int:
    p = lat[key]
    if isinstance(p, Element):  # a definition name: its first placement (MAD-X's default)
        idx = lat.placements_of(key)
        if not idx:
            raise LatticeError(f"'{key}' is defined but not placed")
        return idx[0]
    return p.index


def _rebuilt(lat, line: list[str], overrides: dict, definitions: dict | None = None):
    defs = dict(definitions if definitions is not None else lat.definitions)
    placed = set(line)
    defs = {k: v for k, v in defs.items() if k in placed}
    exprs = {k: v for k, v in lat.expressions.items() if k in placed}
    return type(lat)(name=lat.name, definitions=defs, line=line, overrides=overrides,
                     knobs=lat.knobs, expressions=exprs, s0=lat.s0, extra=lat.extra)


def cycle(lat, start: str):
    """The ring started at placement ``start`` (``name`` or ``name:n``), as SEQEDIT CYCLE."""
    i = _placement(lat, start)
    n = len(lat.line)
    line = lat.line[i:] + lat.line[:i]
    overrides = {(k - i) % n: v for k, v in lat.overrides.items()}
    return _rebuilt(lat, line, overrides)


def reflect(lat):
    """The lattice in reverse order, as SEQEDIT REFLECT (elements themselves unchanged)."""
    n = len(lat.line)
    overrides = {n - 1 - k: v for k, v in lat.overrides.items()}
    return _rebuilt(lat, lat.line[::-1], overrides)


def _from_entries(lat, entries, definitions: dict):
    entries = sorted(entries, key=lambda e: e[2])
    line, overrides, s = [], {}, lat.s0
    drifts = {f"{el.l:.12g}": k for k, el in definitions.items()
              if isinstance(el, Drift) and el.aperture is None}
    for name, ov, start, length in entries:
        gap = start - s
        if gap < -_OVERLAP_TOL:
            raise LatticeError(f"'{name}' at s = {start:.9g} m overlaps the element before it "
                               f"(ending at {s:.9g} m)")
        if gap > _GAP_TOL:
            line.append(_drift(gap, drifts, definitions))
        if ov:
            overrides[len(line)] = ov
        line.append(name)
        s = max(s, start + length)
    end = lat.s0 + lat.length
    if end - s > _GAP_TOL:
        line.append(_drift(end - s, drifts, definitions))
    return _rebuilt(lat, line, overrides, definitions)


def _drift(length: float, drifts: dict, definitions: dict) -> str:
    key = f"{length:.12g}"
    name = drifts.get(key)
    if name is None:
        name = "drift_" + key.replace(".", "p").replace("-", "m")
        while name in definitions:
            name += "_"
        definitions[name] = Drift(name=name, l=float(key))
        drifts[key] = name
    return name


def _matches(lat, pattern: str) -> set[int]:
    rx = re.compile(pattern)
    hits = {p.index for p in lat.elements if rx.fullmatch(p.name) or rx.fullmatch(p.key)}
    if not hits:
        raise LatticeError(f"no placement matches {pattern!r}")
    return hits


def remove(lat, pattern: str):
    """Placements whose name or ``name:n`` fully matches the regular expression ``pattern``
    removed; their length becomes drift, as SEQEDIT REMOVE."""
    hits = _matches(lat, pattern)
    keep = [e for e, p in zip(_all_entries(lat), lat.elements) if p.index not in hits]
    return _from_entries(lat, [e for e in keep if e is not None], dict(lat.definitions))


def _all_entries(lat) -> list:
    """``(name, overrides, s_start, length)`` per placement; None for a plain drift (a gap)."""
    out = []
    for p in lat.elements:
        el = p.definition
        if isinstance(el, Drift) and el.aperture is None and not p.overrides:
            out.append(None)
        else:
            out.append((p.name, p.overrides or None, p.s_start, p.element.path_length))
    return out


def replace(lat, pattern: str, element: Element):
    """Placements matching ``pattern`` replaced by ``element`` centred at the same s (SEQEDIT REPLACE)."""
    hits = _matches(lat, pattern)
    defs = _with_definition(lat, element)
    entries = []
    for e, p in zip(_all_entries(lat), lat.elements):
        if p.index in hits:
            entries.append((element.name, None, p.s_mid - element.path_length / 2, element.path_length))
        elif e is not None:
            entries.append(e)
    return _from_entries(lat, entries, defs)


def install(lat, element: Element, at: float, from_: str | None = None):
    """``element`` installed with its centre at ``at`` [m] from the centre of placement
    ``from_`` (or from the lattice start), as SEQEDIT INSTALL."""
    origin = lat.s0 if from_ is None else lat.elements[_placement(lat, from_)].s_mid
    centre = origin + at
    entries = [e for e in _all_entries(lat) if e is not None]
    entries.append((element.name, None, centre - element.path_length / 2, element.path_length))
    return _from_entries(lat, entries, _with_definition(lat, element))


def _with_definition(lat, element: Element) -> dict:
    defs = dict(lat.definitions)
    known = defs.get(element.name)
    if known is not None and known != element:
        raise LatticeError(f"a different element named '{element.name}' is already defined")
    defs[element.name] = element
    return defs
