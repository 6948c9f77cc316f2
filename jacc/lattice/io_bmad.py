"""Bmad lattice files: read without a Bmad installation, and written.

Reading: ``name = expr`` variables, ``label: type, attr = expr, ...`` elements (types may be
abbreviated), ``label[attr] = expr`` later settings, ``label: line = (...)`` with nested
lines, ``n*item`` repeats and ``-item`` reflections (reverse order), ``use, line``, ``!``
comments and ``&`` continuations (a statement also continues after a trailing ``,``, ``(``,
``{`` or ``=``, as Bmad does). ``parameter[...]`` and ``beginning[...]`` settings are kept in
``lat.extra["bmad"]``. Arithmetic: ``+ - * / ^``, ``sqrt``, ``sin``..., ``pi``, ``twopi``.

Units and conventions (Bmad -> JACC): lengths [m]; ``k1``, ``k2``, ``k3`` as MAD-X; bends:
``angle`` (or ``g`` [1/m], or ``rho`` [m]), ``e1``/``e2``, ``fint``/``fintx`` (default: as
``fint``), ``hgap``/``hgapx`` half gaps (gap = 2 hgap; an ``hgapx`` differing from ``hgap``
is folded into ``fintx`` so that the product fintx * hgapx is kept), ``h1``/``h2``,
``ref_tilt`` -> ``tilt`` (the bend and its reference orbit rolled) and ``tilt`` -> ``dtilt``
(a roll of the field alone); an ``rbend``'s ``l`` is its chord and ``e1``/``e2`` are relative
to the rectangular geometry (as MAD-X); other elements: ``tilt`` -> ``tilt``; ``x_offset``,
``y_offset`` -> ``dx``, ``dy``; ``multipole`` ``KnL``/``KSnL`` (``Tn`` equal for all orders
-> ``tilt``); ``hkicker``/``vkicker`` ``kick``, ``kicker`` ``hkick``/``vkick`` [rad];
``rfcavity`` ``voltage`` [V], ``rf_frequency`` [Hz], ``harmon``, ``phi0`` [rad/2pi] -> lag;
``solenoid`` ``ks`` [1/m]. Other attributes go to ``extra["bmad"]`` with a PhysicsWarning.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from ._lattice_text import (assemble, build_fields, check_written, expand_line, parse_items,
                            resolve_type, short, split_attributes, statements, written_elements,
                            written_spec)
from .base import LatticeError, PhysicsWarning
from .elements import ELEMENTS_BY_NAME
from .expressions import Expression, ExpressionError

__all__ = ["read_bmad", "write_bmad"]

_C = {"l": ("l", 1.0), "tilt": ("tilt", 1.0), "x_offset": ("dx", 1.0), "y_offset": ("dy", 1.0)}
_BEND = {"l": ("l", 1.0), "angle": ("angle", 1.0), "k1": ("k1", 1.0), "k2": ("k2", 1.0),
         "e1": ("e1", 1.0), "e2": ("e2", 1.0), "fint": ("fint", 1.0), "fintx": ("fintx", 1.0),
         "hgap": ("gap", 2.0), "h1": ("h_pole1", 1.0), "h2": ("h_pole2", 1.0),
         "ref_tilt": ("tilt", 1.0), "tilt": ("dtilt", 1.0), "x_offset": ("dx", 1.0),
         "y_offset": ("dy", 1.0), "g": (None, 1.0), "rho": (None, 1.0), "hgapx": (None, 1.0)}
TYPES: dict[str, tuple[str, dict]] = {
    "drift": ("Drift", {"l": ("l", 1.0)}), "pipe": ("Drift", {"l": ("l", 1.0)}),
    "marker": ("Marker", {}),
    "monitor": ("Monitor", _C), "instrument": ("Monitor", _C),
    "quadrupole": ("Quadrupole", {**_C, "k1": ("k1", 1.0)}),
    "sbend": ("SBend", _BEND), "rbend": ("RBend", _BEND),
    "sextupole": ("Sextupole", {**_C, "k2": ("k2", 1.0)}),
    "octupole": ("Octupole", {**_C, "k3": ("k3", 1.0)}),
    "multipole": ("Multipole", {"x_offset": ("dx", 1.0), "y_offset": ("dy", 1.0)}),
    "hkicker": ("HKicker", {**_C, "kick": ("xangle", 1.0)}),
    "vkicker": ("VKicker", {**_C, "kick": ("yangle", 1.0)}),
    "kicker": ("HVCorrector", {**_C, "hkick": ("xangle", 1.0), "vkick": ("yangle", 1.0)}),
    "solenoid": ("Solenoid", {"l": ("l", 1.0), "ks": ("ks", 1.0), "x_offset": ("dx", 1.0),
                              "y_offset": ("dy", 1.0)}),
    "rfcavity": ("RFCavity", {"l": ("l", 1.0), "voltage": ("voltage", 1.0),
                              "rf_frequency": ("frequency", 1.0), "harmon": ("harmon", 1.0),
                              "phi0": ("lag", 1.0)}),
}
_MULTIPOLE = re.compile(r"^(k|ks|t)(\d+)(l?)$")
_FUNCS = {"asin": "arcsin", "acos": "arccos", "atan": "arctan"}
_CONST = {"c_light": "clight"}


def _expr(text: str, variables: dict, at: str):
    """``(value, expression or None)`` of a Bmad arithmetic expression."""
    py = text.strip().lower()
    for k, v in _CONST.items():
        py = re.sub(rf"\b{k}\b", v, py)
    try:
        e = Expression.parse(py)
        return float(e.evaluate(variables)), (e.text if e.names else None)
    except ExpressionError as err:
        raise LatticeError(f"{at}: {err}") from None
    except (TypeError, ZeroDivisionError, OverflowError) as err:
        raise LatticeError(f"{at}: cannot evaluate {text!r}: {err}") from None


# ---------------------------------------------------------------------------------------- read
_LABEL = re.compile(r"^\s*([\w.#$\-]+)\s*:\s*(.*)$", re.S)
_SET = re.compile(r"^\s*([\w.#$\-]+)\s*\[\s*(\w+)\s*\]\s*=\s*(.*)$", re.S)
_VAR = re.compile(r"^\s*([a-z_][\w.]*)\s*:?=\s*(.*)$", re.S | re.I)
_IGNORED = ("title", "no_digested", "no_superimpose", "debug_marker", "end_file", "calc_reference_orbit")


def read_bmad(path):
    """Import a Bmad lattice file (``Lattice.from_bmad``): the line named by ``use``.

    Raises:
        LatticeError: naming the file, the line number and the problem (unsupported element
            type, malformed statement or expression, unknown line item, no ``use``).
    """
    path = os.fspath(path)
    if not Path(path).is_file():
        raise LatticeError(f"Bmad file '{path}' does not exist")
    variables: dict[str, float] = {}
    raw: dict[str, list] = {}          # label -> [type word, {attr: (value, expr)}, where]
    lines: dict[str, list] = {}
    where: dict[str, str] = {}
    settings: dict[str, dict] = {}
    use = None
    for st in statements(Path(path).read_text(errors="replace"), path, auto_continue=",({="):
        at = f"{path}, line {st.line}"
        text = st.text.strip()
        low = text.lower()
        if low.split(",")[0].strip() in _IGNORED:
            continue
        if re.match(r"use\s*,", low):
            use = low.split(",", 1)[1].split(",")[0].strip()
            continue
        m = _SET.match(text)
        if m:
            _setting(m, raw, settings, variables, at)
            continue
        m = _LABEL.match(text)
        if m and not text.lstrip().startswith(":"):
            label, body = m.group(1).lower(), m.group(2).strip()
            if body.startswith("="):  # "name := value" is an assignment, not a label
                m = None
            else:
                where[label] = at
                lm = re.match(r"line\s*=\s*(.*)$", body, re.I | re.S)
                if lm:
                    lines[label] = parse_items(lm.group(1), at)
                else:
                    _element_statement(label, body, raw, variables, at)
                continue
        m = _VAR.match(text)
        if m is None:
            raise LatticeError(f"{at}: cannot read statement {text[:60]!r}")
        variables[m.group(1).lower()] = _expr(m.group(2), variables, at)[0]
    if use is None:
        raise LatticeError(f"{path}: no 'use, <line>' statement names the line to import")
    if use not in lines:
        raise LatticeError(f"{path}: 'use' names '{use}', which is not a line; lines: {sorted(lines)}")
    defs, exprs = {}, {}
    for label, (word, attrs, at) in raw.items():
        defs[label], ex = _element(label, word, attrs, at)
        if ex:
            exprs[label] = ex
    lat = assemble(use, defs, expand_line(use, lines, defs, where), exprs, variables, path, "Bmad")
    if settings:
        lat.extra = {"bmad": settings}
    return lat


def _element_statement(label: str, body: str, raw: dict, variables: dict, at: str) -> None:
    parts = split_attributes(body, at)
    word = parts[0].strip().lower() if parts else ""
    attrs: dict = {}
    if word in raw:  # defined from an earlier element
        word, attrs = raw[word][0], dict(raw[word][1])
    else:
        word = resolve_type(word, TYPES, f"{at}: element '{label}'")
    for part in parts[1:]:
        if "=" not in part:
            raise LatticeError(f"{at}: element '{label}': attribute {part!r} has no '='")
        key, val = part.split("=", 1)
        attrs[key.strip().lower()] = _expr(val, variables, at)
    raw[label] = [word, attrs, at]


def _setting(m, raw: dict, settings: dict, variables: dict, at: str) -> None:
    target, attr, val = m.group(1).lower(), m.group(2).lower(), m.group(3).strip()
    if target in ("parameter", "beginning", "bmad_com", "particle_start"):
        try:
            value = _expr(val, variables, at)[0]
        except LatticeError:
            value = val  # a name such as parameter[particle] = electron
        settings.setdefault(target, {})[attr] = value
        return
    if target not in raw:
        raise LatticeError(f"{at}: '{target}[{attr}]' sets an element not defined before")
    raw[target][1][attr] = _expr(val, variables, at)


def _element(label: str, word: str, attrs: dict, at: str):
    jtype, spec = TYPES[word]
    attrs = dict(attrs)
    extra_fields: dict = {}
    if jtype in ("SBend", "RBend"):
        _bend_attrs(label, attrs, at)
    if jtype == "Multipole":
        extra_fields = _multipole(label, attrs, at)
    exprs: dict = {}
    fields, unknown = build_fields(label, attrs, spec, {}, exprs, at)
    fields.update(extra_fields)
    if unknown:
        warnings.warn(f"{at}: element '{label}' ({word}): attributes {unknown} are not modelled "
                      "by JACC; kept in extra['bmad']", PhysicsWarning, stacklevel=4)
        fields["extra"] = {"bmad": unknown}
    try:
        return ELEMENTS_BY_NAME[jtype].model_validate(fields), exprs
    except ValueError as err:
        raise LatticeError(f"{at}: {short(err)}") from None


def _bend_attrs(label: str, attrs: dict, at: str) -> None:
    length = attrs.get("l", (0.0, None))[0]
    if "angle" not in attrs:
        if "g" in attrs:
            attrs["angle"] = (attrs["g"][0] * length, None)
        elif "rho" in attrs:
            attrs["angle"] = (length / attrs["rho"][0], None)
    if "fintx" not in attrs and "fint" in attrs:
        attrs["fintx"] = attrs["fint"]
    hgap = attrs.get("hgap", (0.0, None))[0]
    if "hgapx" in attrs and attrs["hgapx"][0] != hgap:
        if hgap == 0.0:
            raise LatticeError(f"{at}: element '{label}': hgapx without hgap cannot be expressed "
                               "(JACC's bends have one gap)")
        fx = attrs.get("fintx", (0.0, None))[0]
        attrs["fintx"] = (fx * attrs["hgapx"][0] / hgap, None)


def _multipole(label: str, attrs: dict, at: str) -> dict:
    knl: dict[int, float] = {}
    ksl: dict[int, float] = {}
    tilts = set()
    for key in list(attrs):
        m = _MULTIPOLE.match(key)
        if m is None:
            continue
        value = attrs.pop(key)[0]
        kind, n = m.group(1), int(m.group(2))
        if kind == "t":
            tilts.add(value)
        elif not m.group(3):
            raise LatticeError(f"{at}: element '{label}': a multipole takes integrated "
                               f"strengths ({kind}{n}l), got '{key}'")
        else:
            (knl if kind == "k" else ksl)[n] = value
    if len(tilts) > 1:
        raise LatticeError(f"{at}: element '{label}': different tilts per order {sorted(tilts)} "
                           "are not modelled (one tilt per element)")
    out = {"knl": [knl.get(i, 0.0) for i in range(max(knl) + 1)] if knl else [],
           "ksl": [ksl.get(i, 0.0) for i in range(max(ksl) + 1)] if ksl else []}
    if tilts:
        out["tilt"] = tilts.pop()
    return out


# ---------------------------------------------------------------------------------------- write
_WRITE = {"Drift": "drift", "Marker": "marker", "Monitor": "monitor", "Quadrupole": "quadrupole",
          "SBend": "sbend", "RBend": "rbend", "Sextupole": "sextupole", "Octupole": "octupole",
          "HKicker": "hkicker", "VKicker": "vkicker", "HVCorrector": "kicker",
          "Solenoid": "solenoid", "RFCavity": "rfcavity", "Multipole": "multipole"}


def _bmad_expr(text: str) -> str:
    out = text.replace("**", "^")
    for bmad, py in _FUNCS.items():
        out = re.sub(rf"\b{py}\b", bmad, out)
    return out


def write_bmad(lat) -> str:
    """Bmad lattice text for ``lat`` (``lat.to_bmad()``); `read_bmad` reads it back.

    Knobs become Bmad variables and knob-driven fields expressions of them. A placement with
    overrides gets its own definition ``name_n``. DipoleEdge, NonlinearLens, FieldMap and
    apertures raise LatticeError naming the element.
    """
    out = [f"! Bmad lattice '{lat.name}' written by JACC: {len(lat.line)} placements"]
    settings = lat.extra.get("bmad", {}) if isinstance(lat.extra.get("bmad"), dict) else {}
    for target, values in settings.items():
        out += [f"{target}[{k}] = {v!r}" if not isinstance(v, str) else f"{target}[{k}] = {v}"
                for k, v in values.items()]
    out += [f"{k} = {knob.value!r}" for k, knob in lat.knobs.items()]
    definitions, body = written_elements(lat, _definition)
    out += definitions
    out.append(f"{lat.name}: line = ({body})")
    out.append(f"use, {lat.name}")
    return "\n".join(out) + "\n"


def _definition(el, exprs: dict) -> str:
    kind = el.element_name
    spec = written_spec(el, _WRITE, TYPES, "Bmad")
    check_written(el, spec, ("knl", "ksl", "tilt") if kind == "Multipole" else (), "Bmad")
    attrs: list[str] = []
    for attr, (field, scale) in spec.items():
        if field is None:
            continue
        value = getattr(el, field)
        if field in exprs:
            e = exprs[field]
            m = re.fullmatch(rf"\((.*)\) \* {re.escape(repr(scale))}", e)
            e = m.group(1) if m else (e if scale == 1.0 else f"({e}) / {scale!r}")
            attrs.append(f"{attr} = {_bmad_expr(e)}")
        elif value or (attr == "fintx" and el.fintx != el.fint):
            attrs.append(f"{attr} = {value / scale!r}" if not isinstance(value, int)
                         else f"{attr} = {value}")
    if kind == "Multipole":
        attrs += [f"k{i}l = {v!r}" for i, v in enumerate(el.knl) if v]
        attrs += [f"ks{i}l = {v!r}" for i, v in enumerate(el.ksl) if v]
        if el.tilt:
            attrs += [f"t{i} = {el.tilt!r}" for i in range(max(len(el.knl), len(el.ksl)))]
    extra = el.extra.get("bmad") if isinstance(el.extra.get("bmad"), dict) else {}
    attrs += [f"{k} = {v!r}" for k, v in extra.items() if isinstance(v, (int, float))]
    return ", ".join([_WRITE[kind]] + attrs)
