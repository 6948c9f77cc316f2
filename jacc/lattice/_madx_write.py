"""MAD-X text from a `Lattice`: knobs, element definitions, a sequence with entry positions.

Knob-driven fields are written as deferred expressions (``k1 := kq01``) so that MAD-X sees the
same ties; a placement whose overrides change what MAD-X sees gets its own definition
(``<name>_<occurrence>``); misalignments use MAD-X's element attributes ``dx``, ``dy``,
``dpsi``. DipoleEdge ``side`` has no MAD-X meaning and is dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ._madx_tables import EXPORT_TYPES, FIELDS
from .base import Element, LatticeError

__all__ = ["write_madx"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]*\Z")
# MAD-X types without a tilt attribute.
_NO_TILT = {"marker", "solenoid", "rfcavity"}
# Fields that MAD-X does not see: overriding them needs no separate definition.
_INVISIBLE = {"side", "diff_params", "name", "element_name"}
_FUNCTIONS = {"arcsin": "asin", "arccos": "acos", "arctan": "atan"}


def write_madx(lat) -> str:
    """MAD-X text for ``lat`` (``lat.to_madx()``); MAD-X reads it back with the same optics.

    Raises:
        LatticeError: an element type without MAD-X counterpart (FieldMap), or a name MAD-X
            cannot read.
    """
    _check_name(lat.name, "lattice")
    lower: dict[str, str] = {}
    for name in list(lat.definitions) + list(lat.knobs):
        _check_name(name, "element or knob")
        if lower.setdefault(name.lower(), name) != name:
            raise LatticeError(f"names '{lower[name.lower()]}' and '{name}' are the same in "
                               "MAD-X, which ignores case")
    out = [f"! MAD-X lattice '{lat.name}' written by JACC: {len(lat.line)} placements, "
           f"length {lat.length!r} m"]
    beam = lat.extra.get("beam")
    charge = 1.0  # no beam command: MAD-X's default beam, a positron
    if isinstance(beam, dict) and "energy" in beam:
        out.append(_beam(beam))
        charge = float(beam.get("charge", 1.0))
    for k, knob in lat.knobs.items():
        out.append(f"{k} = {_num(knob.value)};")

    placed = []     # (MAD-X label, s_start) per placement
    written: set[str] = set()
    taken = {n.lower() for n in lat.definitions} | {k.lower() for k in lat.knobs}
    for p in lat.elements:
        name = p.name
        visible = {k: v for k, v in p.overrides.items() if k not in _INVISIBLE}
        if visible:
            label = _unique(f"{name}_{p.occurrence}", taken)
            exprs = {f: e for f, e in lat.expressions.get(name, {}).items() if f not in visible}
            out.append(_definition(label, p.element, exprs, charge))
        else:
            label = name
            if name not in written:
                out.append(_definition(name, lat.definitions[name], lat.expressions.get(name, {}),
                                       charge))
                written.add(name)
        placed.append((label, p.s_start - lat.s0))

    out.append(f"{lat.name}: sequence, l = {_num(lat.length)}, refer = entry;")
    out += [f"  {label}, at = {_num(s)};" for label, s in placed]
    out.append("endsequence;")
    return "\n".join(out) + "\n"


def _definition(label: str, el: Element, exprs: dict[str, str], charge: float) -> str:
    kind = el.element_name
    keyword = EXPORT_TYPES.get(kind)
    if keyword is None:
        raise LatticeError(f"{kind} '{el.name}': no MAD-X counterpart, cannot export")
    madx_extra = dict(el.extra.get("madx", {})) if isinstance(el.extra.get("madx"), dict) else {}
    keyword = str(madx_extra.pop("type", keyword))
    attrs: list[str] = []
    if el.l != 0.0:
        attrs.append(f"l = {_num(el.l)}")
    if keyword not in _NO_TILT:
        attrs += _attr("tilt", el.tilt, exprs.get("tilt"), 1.0)
    for field, (madx, scale) in FIELDS.get(kind, {}).items():
        value = getattr(el, field)
        if field == "fintx" and value == el.fint:
            continue  # MAD-X's default: as fint
        if kind == "RFCavity" and field == "frequency" and value == 0.0:
            continue  # the cavity is given by its harmonic number
        if kind == "Multipole" and field == "angle":
            if value is None or value == (el.knl[0] if el.knl else 0.0):
                continue  # MAD-X's default: bent by knl[0]
            if value == 0.0:
                raise LatticeError(f"Multipole '{el.name}': a straight reference (angle = 0) "
                                   f"with knl[0] = {el.knl[0]!r} has no MAD-X counterpart "
                                   "(MAD-X reads angle 0 as knl[0]), cannot export")
        if isinstance(value, list):
            if value:
                attrs.append(f"{madx} = {{{', '.join(_num(v) for v in value)}}}")
            continue
        if field == "voltage":
            scale = scale / abs(charge)  # MAD-X VOLT is the energy gain |q| V [MV]
        attrs += _attr(madx, value, exprs.get(field), scale)
    for field, madx in (("dx", "dx"), ("dy", "dy"), ("dtilt", "dpsi")):
        attrs += _attr(madx, getattr(el, field), exprs.get(field), 1.0)
    aperture = el.aperture
    if kind in ("RectangularAperture", "EllipticalAperture"):
        shape = "rectangle" if kind == "RectangularAperture" else "ellipse"
        attrs.append(f"apertype = {shape}, aperture = {{{_num(el.a)}, {_num(el.b)}}}")
    elif aperture is not None:
        sizes = [aperture.a] if aperture.shape == "circle" else [aperture.a, aperture.b]
        attrs.append(f"apertype = {aperture.shape}, aperture = {{{', '.join(map(_num, sizes))}}}")
    for attr, value in madx_extra.items():
        if attr in ("align_errors", "field_errors"):
            continue  # per-placement error records: informational only
        if isinstance(value, bool) or not isinstance(value, (int, float, list, str)):
            continue
        if isinstance(value, list):
            attrs.append(f"{attr} = {{{', '.join(_num(v) for v in value)}}}")
        elif isinstance(value, str):
            if _NAME.match(value):
                attrs.append(f"{attr} = {value}")
        else:
            attrs.append(f"{attr} = {_num(value)}")
    return f"{label}: {keyword}" + "".join(f", {a}" for a in attrs) + ";"


def _attr(madx: str, value: Any, expr: str | None, scale: float) -> list[str]:
    if expr is not None:
        return [f"{madx} := {_madx_expr(_unscale(expr, scale))}"]
    if isinstance(value, int) and not isinstance(value, bool):
        return [f"{madx} = {value}"] if value else []
    if value == 0.0:
        return []
    return [f"{madx} = {_num(value / scale if scale != 1.0 else value)}"]


def _unscale(expr: str, scale: float) -> str:
    """The MAD-X-units expression of a JACC-units expression ``expr`` (scale: JACC/MAD-X)."""
    if scale == 1.0:
        return expr
    m = re.fullmatch(rf"\((.*)\) \* {re.escape(repr(scale))}", expr.strip())
    return m.group(1) if m else f"({expr}) / {scale!r}"


def _madx_expr(expr: str) -> str:
    text = expr.replace("**", "^")
    for py, madx in _FUNCTIONS.items():
        text = re.sub(rf"\b{py}\b", madx, text)
    return text


def _beam(beam: dict) -> str:
    parts = [f"particle = {beam.get('particle', 'positron')}"]
    for key in ("mass", "charge", "energy"):
        if key in beam:
            parts.append(f"{key} = {_num(float(beam[key]))}")
    return "beam, " + ", ".join(parts) + ";"


def _num(value: float) -> str:
    v = float(value)
    if not math.isfinite(v):
        raise LatticeError(f"cannot write the non-finite number {v!r} to MAD-X")
    return repr(v)


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise LatticeError(f"{what} name '{name}' is not a valid MAD-X name "
                           "(a letter, then letters, digits, '_' or '.')")


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out.lower() in taken:
        k += 1
        out = f"{name}_{k}"
    taken.add(out.lower())
    return out
