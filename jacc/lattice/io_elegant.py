"""elegant lattice files (``.lte``): read without an elegant installation, and written.

Reading: ``label: TYPE, ATTR=value, ...`` (types and attributes case-insensitive, types may be
abbreviated as elegant allows), ``label: LINE=(...)`` with nested lines, ``n*item`` repeats and
``-item`` reflections (the line in reverse order), ``% <RPN> sto name`` variables, values in
double quotes as RPN expressions (``"kq 2 *"``), ``!`` comments, ``&`` continuations, ``USE``.
An element may be defined from another (``q2: q1, K1=...``). The line is the one named in
``USE``, else the last line defined.

Units and conventions (elegant -> JACC): lengths [m], K1/K2/K3 as MAD-X, ``HGAP`` is the half
gap (gap = 2 HGAP), ``FINT`` applies to both faces (``FINT1``/``FINT2`` to one; elegant's
default 0.5), ``EDGE1_EFFECTS=0``/``EDGE2_EFFECTS=0`` turn a face off (e1 and its fint set to
0), ``H1``/``H2`` pole-face curvatures; ``RBEN``'s ``E1``/``E2`` are taken relative to the
rectangular geometry and its ``L`` as the chord, as MAD-X; ``MULT`` ``KNL`` at ``ORDER``;
``HKICK``/``VKICK`` ``KICK`` and ``KICKER`` ``HKICK``/``VKICK`` [rad]; ``RFCA`` ``VOLT`` [V],
``FREQ`` [Hz], ``PHASE`` [deg] -> lag = PHASE/360; ``SOLE`` ``KS`` [1/m]. Attributes JACC
does not model (integration settings such as ``N_KICKS``) go to ``extra["elegant"]`` with a
PhysicsWarning.
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

__all__ = ["read_elegant", "rpn_to_infix", "write_elegant"]

_C = {"l": ("l", 1.0), "tilt": ("tilt", 1.0), "dx": ("dx", 1.0), "dy": ("dy", 1.0)}
_BEND = {**_C, "angle": ("angle", 1.0), "k1": ("k1", 1.0), "k2": ("k2", 1.0),
         "e1": ("e1", 1.0), "e2": ("e2", 1.0), "hgap": ("gap", 2.0), "fint": ("fint", 1.0),
         "fint1": ("fint", 1.0), "fint2": ("fintx", 1.0), "h1": ("h_pole1", 1.0),
         "h2": ("h_pole2", 1.0), "edge1_effects": (None, 1.0), "edge2_effects": (None, 1.0)}
TYPES: dict[str, tuple[str, dict]] = {
    "drif": ("Drift", {"l": ("l", 1.0)}), "drift": ("Drift", {"l": ("l", 1.0)}),
    "edrift": ("Drift", {"l": ("l", 1.0)}),
    "quad": ("Quadrupole", {**_C, "k1": ("k1", 1.0)}),
    "kquad": ("Quadrupole", {**_C, "k1": ("k1", 1.0)}),
    "quadrupole": ("Quadrupole", {**_C, "k1": ("k1", 1.0)}),
    "sben": ("SBend", _BEND), "sbend": ("SBend", _BEND), "csbend": ("SBend", _BEND),
    "csben": ("SBend", _BEND), "rben": ("RBend", _BEND), "rbend": ("RBend", _BEND),
    "sext": ("Sextupole", {**_C, "k2": ("k2", 1.0)}),
    "ksext": ("Sextupole", {**_C, "k2": ("k2", 1.0)}),
    "octu": ("Octupole", {**_C, "k3": ("k3", 1.0)}),
    "koct": ("Octupole", {**_C, "k3": ("k3", 1.0)}),
    "mult": ("Multipole", {"tilt": ("tilt", 1.0), "dx": ("dx", 1.0), "dy": ("dy", 1.0),
                           "knl": (None, 1.0), "order": (None, 1.0), "l": ("lrad", 1.0)}),
    "hkick": ("HKicker", {**_C, "kick": ("xangle", 1.0)}),
    "vkick": ("VKicker", {**_C, "kick": ("yangle", 1.0)}),
    "kicker": ("HVCorrector", {**_C, "hkick": ("xangle", 1.0), "vkick": ("yangle", 1.0)}),
    "moni": ("Monitor", _C), "hmon": ("Monitor", _C), "vmon": ("Monitor", _C),
    "mark": ("Marker", {}), "marker": ("Marker", {}), "monitor": ("Monitor", _C),
    "sole": ("Solenoid", {"l": ("l", 1.0), "ks": ("ks", 1.0), "dx": ("dx", 1.0), "dy": ("dy", 1.0)}),
    "rfca": ("RFCavity", {"l": ("l", 1.0), "volt": ("voltage", 1.0), "freq": ("frequency", 1.0),
                          "phase": ("lag", 1.0 / 360.0)}),
}
_BEND_TYPES = ("sben", "sbend", "csbend", "csben", "rben", "rbend")

# ---------------------------------------------------------------------------------------- RPN
_RPN_BINARY = {"+": "+", "-": "-", "*": "*", "/": "/"}
_RPN_FUNCS = {"sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin", "acos": "arccos",
              "atan": "arctan", "sqrt": "sqrt", "exp": "exp", "ln": "log", "abs": "abs"}


def rpn_to_infix(text: str) -> str:
    """elegant's RPN (``"kq 2 *"``) as an infix expression (``(kq * 2)``)."""
    stack: list[str] = []
    for tok in text.lower().split():
        try:
            if tok in _RPN_BINARY:
                b, a = stack.pop(), stack.pop()
                stack.append(f"({a} {tok} {b})")
            elif tok == "pow":
                b, a = stack.pop(), stack.pop()
                stack.append(f"({a} ** {b})")
            elif tok == "chs":
                stack.append(f"(-{stack.pop()})")
            elif tok == "sqr":
                a = stack.pop()
                stack.append(f"({a} ** 2)")
            elif tok in _RPN_FUNCS:
                stack.append(f"{_RPN_FUNCS[tok]}({stack.pop()})")
            else:
                if not re.fullmatch(r"[-+]?[\d.]+(e[-+]?\d+)?|[a-z_][\w.]*", tok):
                    raise ExpressionError(f"RPN expression {text!r}: cannot read {tok!r}")
                stack.append(tok)
        except IndexError:
            raise ExpressionError(f"RPN expression {text!r}: operator {tok!r} lacks operands") from None
    if len(stack) != 1:
        raise ExpressionError(f"RPN expression {text!r} leaves {len(stack)} values on the stack")
    return stack[0]


def _value(text: str, variables: dict, where: str):
    """``(number, infix expression or None)`` of an attribute value."""
    text = text.strip()
    expr = None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            expr = rpn_to_infix(text[1:-1])
            val = float(Expression.parse(expr).evaluate(variables))
        except ExpressionError as err:
            raise LatticeError(f"{where}: {err}") from None
        return val, (expr if Expression.parse(expr).names else None)
    try:
        return float(text), None
    except ValueError:
        raise LatticeError(f"{where}: {text!r} is not a number (RPN expressions go in double "
                           "quotes)") from None


# ---------------------------------------------------------------------------------------- read
_LABEL = re.compile(r"^\s*([\w.#$\-]+)\s*:\s*(.*)$", re.S)


def read_elegant(path, line: str | None = None):
    """Import an elegant ``.lte`` file (``Lattice.from_elegant``); see the module rules.

    Args:
        path: the file.
        line: the beam line to import (default: ``USE``'s, else the last line defined).

    Raises:
        LatticeError: naming the file, the line number and the problem (unsupported element
            type, malformed statement or expression, unknown line item).
    """
    path = os.fspath(path)
    if not Path(path).is_file():
        raise LatticeError(f"elegant file '{path}' does not exist")
    variables: dict[str, float] = {}
    raw: dict[str, tuple[str, list[str], str]] = {}   # label -> (type word, attrs, where)
    lines: dict[str, list] = {}
    where: dict[str, str] = {}
    use = None
    for st in statements(Path(path).read_text(errors="replace"), path):
        at = f"{path}, line {st.line}"
        text = st.text.strip()
        low = text.lower()
        if low.startswith("%"):
            _store(text[1:], variables, at)
            continue
        if re.fullmatch(r"use\s*,\s*[\w.\-]+", low):
            use = low.split(",", 1)[1].strip()
            continue
        if low == "return":
            break
        m = _LABEL.match(text)
        if m is None:
            raise LatticeError(f"{at}: cannot read statement {text[:60]!r}")
        label, body = m.group(1).lower(), m.group(2).strip()
        lm = re.match(r"line\s*=\s*(.*)$", body, re.I | re.S)
        where[label] = at
        if lm:
            lines[label] = parse_items(lm.group(1), at)
            continue
        parts = split_attributes(body, at)
        raw[label] = (parts[0].strip().lower() if parts else "", parts[1:], at)
    name = (line or use or (list(lines)[-1] if lines else None))
    if name is None:
        raise LatticeError(f"{path}: defines no beam line (LINE=...)")
    name = name.lower()
    if name not in lines:
        raise LatticeError(f"{path}: no line '{name}'; lines: {sorted(lines)}")
    defs, exprs = _definitions(raw, variables)
    placed = expand_line(name, lines, defs, where)
    return assemble(name, defs, placed, exprs, variables, path, "elegant")


def _store(text: str, variables: dict, at: str) -> None:
    m = re.fullmatch(r"\s*(.*?)\s+sto\s+([a-z_][\w.]*)\s*", text.lower(), re.S)
    if m is None:
        raise LatticeError(f"{at}: a variable is set as '% <RPN expression> sto name'")
    try:
        variables[m.group(2)] = float(Expression.parse(rpn_to_infix(m.group(1))).evaluate(variables))
    except ExpressionError as err:
        raise LatticeError(f"{at}: {err}") from None


def _definitions(raw: dict, variables: dict):
    defs, exprs, attrs_of = {}, {}, {}
    for label, (word, parts, at) in raw.items():
        attrs: dict = {}
        for part in parts:
            if "=" not in part:
                raise LatticeError(f"{at}: element '{label}': attribute {part!r} has no '='")
            key, val = part.split("=", 1)
            attrs[key.strip().lower()] = _value(val, variables, at)
        if word in attrs_of:  # defined from an earlier element: its type and attributes
            base_word, base_attrs = attrs_of[word]
            word, attrs = base_word, {**base_attrs, **attrs}
        word = resolve_type(word, TYPES, f"{at}: element '{label}'")
        attrs_of[label] = (word, attrs)
        defs[label], ex = _element(label, word, attrs, at)
        if ex:
            exprs[label] = ex
    return defs, exprs


def _element(label: str, word: str, attrs: dict, at: str):
    jtype, spec = TYPES[word]
    attrs = dict(attrs)
    if word in _BEND_TYPES:
        default = attrs.get("fint", (0.5, None))  # elegant's default fringe integral
        entry, exit_ = attrs.pop("fint1", default), attrs.pop("fint2", default)
        if attrs.get("edge1_effects", (1.0, None))[0] == 0.0:
            attrs["e1"], entry = (0.0, None), (0.0, None)
        if attrs.get("edge2_effects", (1.0, None))[0] == 0.0:
            attrs["e2"], exit_ = (0.0, None), (0.0, None)
        attrs["fint"], attrs["fint2"] = entry, exit_
    exprs: dict = {}
    fields, unknown = build_fields(label, attrs, spec, {}, exprs, at)
    if jtype == "Multipole":
        order = int(attrs.get("order", (1.0, None))[0])
        knl = attrs.get("knl", (0.0, None))[0]
        fields["knl"] = [0.0] * order + [knl]
    if unknown:
        warnings.warn(f"{at}: element '{label}' ({word}): attributes {unknown} are not modelled "
                      "by JACC; kept in extra['elegant']", PhysicsWarning, stacklevel=4)
        fields["extra"] = {"elegant": unknown}
    try:
        return ELEMENTS_BY_NAME[jtype].model_validate(fields), exprs
    except ValueError as err:
        raise LatticeError(f"{at}: {short(err)}") from None


# ---------------------------------------------------------------------------------------- write
_WRITE = {"Drift": "DRIF", "Marker": "MARK", "Monitor": "MONI", "Quadrupole": "QUAD",
          "SBend": "CSBEND", "RBend": "RBEN", "Sextupole": "SEXT", "Octupole": "OCTU",
          "HKicker": "HKICK", "VKicker": "VKICK", "HVCorrector": "KICKER", "Solenoid": "SOLE",
          "RFCavity": "RFCA", "Multipole": "MULT"}
_WORD = {"Drift": "drif", "Marker": "mark", "Monitor": "moni", "Quadrupole": "quad",
         "SBend": "csbend", "RBend": "rben", "Sextupole": "sext", "Octupole": "octu",
         "HKicker": "hkick", "VKicker": "vkick", "HVCorrector": "kicker", "Solenoid": "sole",
         "RFCavity": "rfca", "Multipole": "mult"}


def infix_to_rpn(text: str) -> str:
    """An infix expression (JACC's) as elegant RPN."""
    import ast

    inv = {v: k for k, v in _RPN_FUNCS.items()}
    ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "pow"}

    def rpn(node) -> str:
        if isinstance(node, ast.Constant):
            return repr(node.value)
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.BinOp):
            return f"{rpn(node.left)} {rpn(node.right)} {ops[type(node.op)]}"
        if isinstance(node, ast.UnaryOp):
            return rpn(node.operand) + (" chs" if isinstance(node.op, ast.USub) else "")
        if isinstance(node, ast.Call) and node.func.id in inv:
            return f"{rpn(node.args[0])} {inv[node.func.id]}"
        raise LatticeError(f"expression {text!r} cannot be written as elegant RPN")

    return rpn(Expression.parse(text)._tree)


def write_elegant(lat) -> str:
    """elegant ``.lte`` text for ``lat`` (``lat.to_elegant()``); `read_elegant` reads it back.

    Knobs become ``% value sto name``; knob-driven fields RPN strings. A placement with
    overrides gets its own definition ``name_n``. DipoleEdge, NonlinearLens, FieldMap and
    apertures have no elegant counterpart here and raise LatticeError naming the element.
    """
    out = [f"! elegant lattice '{lat.name}' written by JACC: {len(lat.line)} placements"]
    out += [f"% {knob.value!r} sto {k}" for k, knob in lat.knobs.items()]
    definitions, body = written_elements(lat, _definition)
    out += definitions
    out.append(f"{lat.name}: LINE=({body})")
    out.append(f"USE, {lat.name}")
    return "\n".join(out) + "\n"


def _definition(el, exprs: dict) -> str:
    kind = el.element_name
    spec = written_spec(el, _WORD, TYPES, "elegant")
    check_written(el, spec, ("knl",), "elegant")
    attrs: list[str] = []
    if kind == "Multipole":
        nz = [i for i, v in enumerate(el.knl) if v]
        if len(nz) > 1 or any(el.ksl):
            raise LatticeError(f"Multipole '{el.name}': elegant's MULT holds one normal order")
        n = nz[0] if nz else 0
        attrs += [f"KNL={el.knl[n]!r}" if nz else "KNL=0.0", f"ORDER={n}"]
    for attr, (field, scale) in spec.items():
        if field is None or attr in ("fint1",) or kind == "Multipole" and attr == "knl":
            continue
        value = getattr(el, field)
        if field in exprs:
            e = exprs[field]
            m = re.fullmatch(rf"\((.*)\) \* {re.escape(repr(scale))}", e)
            e = m.group(1) if m else (e if scale == 1.0 else f"({e}) / {scale!r}")
            attrs.append(f'{attr.upper()}="{infix_to_rpn(e)}"')
        elif value or attr in ("fint", "fint2") and kind in ("SBend", "RBend"):
            attrs.append(f"{attr.upper()}={value / scale!r}")
    extra = el.extra.get("elegant") if isinstance(el.extra.get("elegant"), dict) else {}
    attrs += [f"{k.upper()}={v!r}" for k, v in extra.items() if isinstance(v, (int, float))]
    if kind == "RFCavity" and el.frequency == 0.0 and el.harmon:
        raise LatticeError(f"RFCavity '{el.name}': elegant's RFCA needs FREQ (harmon only given)")
    return ", ".join([_WRITE[kind]] + attrs)
