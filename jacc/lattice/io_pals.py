"""The PALS lattice standard (pals-schema): `Lattice` <-> PALS documents and files.

A PALS document is ``{"PALS": {"version": ..., "facility": [...]}}``: the facility lists one
entry per element definition, a ``BeamLine`` named after the lattice (its placements, in
order; a lattice that is ``k`` repeats of a cell becomes a cell ``BeamLine`` referenced ``k``
times) and a PALS ``Lattice`` whose branch is that line. pals-schema validates every document
written.

Element rules (JACC -> PALS): Drift -> Drift; Marker -> Marker; Monitor -> Instrument;
Quadrupole, Sextupole, Octupole -> same kind with ``MagneticMultipoleP`` ``KnN``/``KsN``
(normalised, per metre) and ``tiltN``; SBend/RBend -> SBend/RBend with ``BendP`` (``g_ref`` =
angle / arc, ``e1``/``e2`` (RBend also ``e1_rect``/``e2_rect`` = JACC's e1/e2 and
``L_chord`` = JACC's l), ``edge_int1/2`` = fint * gap, fintx * gap, ``h1/h2``, ``tilt_ref``)
and ``Kn1``/``Kn2``; Multipole -> Multipole with ``KnNL``/``KsNL``; H/V kickers -> Kicker
with ``Kn0L = -xangle``, ``Ks0L = yangle`` (MAD-X signs); Solenoid -> Solenoid (``Ksol``);
RFCavity -> RFCavity (``RFP``: frequency [Hz], harmon, voltage [V], phase = 2 pi lag);
apertures -> ``ApertureP`` (centred limits); dx, dy, dtilt -> ``BodyShiftP`` x_offset,
y_offset, z_rot. DipoleEdge, NonlinearLens (-> Marker), FieldMap and NonlinearInsertField
(-> Drift) have no PALS kind: their fields go to the extension.

Extension: each element (and the PALS ``Lattice``) may carry a ``jacc`` key that pals-schema
ignores: the JACC type where the kind does not decide it, exact values where PALS holds a
derived one (angle, fint and gap), and what PALS cannot express (knobs and expressions,
``diff_params``, ``extra``, the fields of elements without a PALS kind, per-placement
overrides: such a placement is written as its own element ``name:n``). What PALS cannot
express is reported with a PhysicsWarning; nothing is dropped, and ``from_pals(to_pals(lat))
== lat``. pals-schema 0.3.0 has no parameters or expressions, so knobs live in the extension
and the element values are the evaluated numbers.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

from ._pals_elements import NO_PALS_KIND, SILENT_EXTENSION, element_from_pals, element_to_pals
from .base import LatticeError, PhysicsWarning
from .lattice import Knob, Lattice

__all__ = ["from_pals", "read_pals", "to_pals", "validate_pals", "write_pals"]

PALS_VERSION = None  # pals-schema 0.3.0 writes no version


def to_pals(lat: Lattice) -> dict:
    """The PALS document of ``lat`` (validated by pals-schema); see the module rules."""
    lat._sync()
    facility: list[dict] = []
    lossy: dict[str, list[str]] = {}
    defined: dict[str, str] = {}
    placements: list[str] = []
    for i, name in enumerate(lat.line):
        ov = lat.overrides.get(i)
        key = name
        if ov:
            key = f"{name}:{lat.placements_of(name).index(i) + 1}"
        if key not in defined:
            d, ext = element_to_pals(lat.element_at(i))
            if ov:
                ext.update(placement_of=name, overrides=ov)
            if ext:
                d["jacc"] = ext
                no_kind = ext.get("element_name") in NO_PALS_KIND
                lost = sorted(set(ext) - ({"element_name"} if no_kind else SILENT_EXTENSION))
                if lost:
                    lossy.setdefault(", ".join(lost), []).append(key)
            facility.append({key: d})
            defined[key] = key
        placements.append(key)
    for name, el in lat.definitions.items():  # defined but not placed: kept as definitions
        if name not in defined:
            d, ext = element_to_pals(el)
            if ext:
                d["jacc"] = ext
            facility.append({name: d})
    facility += _lines(lat.name, placements)
    top: dict[str, Any] = {"kind": "Lattice", "branches": [lat.name]}
    ext = {"name": lat.name, "s0": lat.s0, "extra": lat.extra,
           "knobs": {k: v.model_dump() for k, v in lat.knobs.items()},
           "expressions": lat.expressions}
    top["jacc"] = {k: v for k, v in ext.items() if v or k == "name"}
    facility.append({f"{lat.name}_lattice": top})
    if lat.knobs:
        lossy.setdefault("knobs and expressions (no PALS parameters in pals-schema 0.3)", []).append(lat.name)
    if lossy:
        said = "; ".join(f"{what}: {', '.join(who[:5])}{' ...' if len(who) > 5 else ''}"
                         for what, who in lossy.items())
        warnings.warn(f"PALS export of '{lat.name}': kept in the 'jacc' extension only: {said}",
                      PhysicsWarning, stacklevel=3)
    doc = {"PALS": {"version": PALS_VERSION, "facility": facility}}
    validate_pals(doc)
    return doc


def _lines(name: str, placements: list[str]) -> list[dict]:
    """The main BeamLine, with a cell BeamLine when the placements repeat a cell."""
    n = len(placements)
    for p in range(1, n // 2 + 1):
        if n % p == 0 and placements == placements[:p] * (n // p):
            cell = f"{name}_cell"
            return [{cell: {"kind": "BeamLine", "line": placements[:p]}},
                    {name: {"kind": "BeamLine", "line": [cell] * (n // p)}}]
    return [{name: {"kind": "BeamLine", "line": placements}}]


def validate_pals(doc: dict, source: str = "PALS document"):
    """Validate a PALS document with pals-schema; returns the ``pals.PALSroot``."""
    try:
        import pals
    except ImportError as err:  # pragma: no cover - pals-schema is in the io extra
        raise LatticeError(f"PALS needs pals-schema (pip install pals-schema): {err}") from None
    body = doc.get("PALS") if isinstance(doc, dict) else None
    if not isinstance(body, dict):
        raise LatticeError(f"{source}: a PALS document is a dict {{'PALS': {{'facility': [...]}}}}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pals-schema's "under construction" notes
        try:
            # pals-schema reads a one-key body as a named container: give it its version key
            return pals.PALSroot(**{"version": None, **copy.deepcopy(body)})
        except (ValueError, TypeError) as err:
            raise LatticeError(f"{source}: not a valid PALS document: {err}") from None


def from_pals(obj, *, source: str = "PALS document") -> Lattice:
    """A `Lattice` from a PALS document dict, a ``pals.PALSroot`` or a PALS file path.

    The lattice is the first branch of the last PALS ``Lattice`` of the facility, else the last
    ``BeamLine``. Lines nest and repeat by reference; elements may be defined in the facility
    or inline in a line. Unsupported kinds raise a LatticeError naming the element.
    """
    if isinstance(obj, (str, os.PathLike)):
        return read_pals(obj)
    if not isinstance(obj, dict):
        obj = obj.model_dump()
    validate_pals(obj, source)
    facility = obj["PALS"]["facility"]
    defs: dict[str, dict] = {}
    for item in facility:
        if isinstance(item, dict) and len(item) == 1:
            (name, d), = item.items()
            if isinstance(d, dict):
                defs[name] = d
    tops = [n for n, d in defs.items() if d.get("kind") == "Lattice"]
    lines = [n for n, d in defs.items() if d.get("kind") == "BeamLine"]
    if tops:
        top_ext = defs[tops[-1]].get("jacc") or {}
        branch = defs[tops[-1]]["branches"][0]
        start = branch if isinstance(branch, str) else _inline(branch, defs)
    elif lines:
        top_ext, start = {}, lines[-1]
    else:
        raise LatticeError(f"{source}: no BeamLine or Lattice in the facility")
    return _build(defs, start, top_ext, source)


def _inline(item: dict, defs: dict) -> str:
    (name, d), = item.items()
    if name in defs and defs[name] != d:
        raise LatticeError(f"two different PALS elements named '{name}'")
    defs[name] = d
    return name


def _expand(name: str, defs: dict, source: str, stack=()) -> list[str]:
    if name in stack:
        raise LatticeError(f"{source}: line '{name}' contains itself")
    d = defs.get(name)
    if d is None:
        raise LatticeError(f"{source}: '{name}' is placed but never defined")
    if d.get("kind") != "BeamLine":
        return [name]
    out: list[str] = []
    for item in d.get("line", []):
        sub = item if isinstance(item, str) else _inline(item, defs)
        out += _expand(sub, defs, source, stack + (name,))
    return out


def _build(defs: dict, start: str, top_ext: dict, source: str) -> Lattice:
    keys = _expand(start, defs, source)
    definitions: dict[str, Any] = {}
    line: list[str] = []
    overrides: dict[int, dict] = {}
    for key in keys:
        d = defs[key]
        ext = d.get("jacc") or {}
        base = ext.get("placement_of")
        if base is not None:
            overrides[len(line)] = ext["overrides"]
            line.append(base)
            continue
        if key not in definitions:
            definitions[key] = element_from_pals(key, d, source)
        line.append(key)
    for key, d in defs.items():  # facility elements not placed stay definitions
        if (d.get("kind") not in ("BeamLine", "Lattice") and key not in definitions
                and "placement_of" not in (d.get("jacc") or {})):
            definitions[key] = element_from_pals(key, d, source)
    for key in keys:  # a definition placed only with overrides: rebuilt from its own entry
        base = (defs[key].get("jacc") or {}).get("placement_of")
        if base is not None and base not in definitions:
            definitions[base] = _unoverride(defs[key], base, source)
    try:
        return Lattice(name=top_ext.get("name", start), definitions=definitions, line=line,
                       overrides=overrides, s0=top_ext.get("s0", 0.0),
                       extra=top_ext.get("extra", {}), expressions=top_ext.get("expressions", {}),
                       knobs={k: Knob(**v) for k, v in top_ext.get("knobs", {}).items()})
    except (ValueError, TypeError) as err:
        raise LatticeError(f"{source}: {err}") from None


def _unoverride(d: dict, base: str, source: str):
    """The definition under an overridden placement, when the file holds no plain placement."""
    ext = d["jacc"]
    el = element_from_pals(base, {**d, "jacc": {k: v for k, v in ext.items()
                                                 if k not in ("placement_of", "overrides")}}, source)
    return el


# ---------------------------------------------------------------------------------------- files
def write_pals(lat: Lattice, path) -> None:
    """Write ``lat`` as ``.pals.yaml`` or ``.pals.json`` (by the file name)."""
    path = Path(os.fspath(path))
    doc = to_pals(lat)
    if path.name.endswith(".pals.json"):
        path.write_text(json.dumps(doc, indent=1))
    elif path.name.endswith((".pals.yaml", ".pals.yml")):
        import yaml

        path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    else:
        raise LatticeError(f"{path}: a PALS file name ends in .pals.yaml or .pals.json")


def read_pals(path) -> Lattice:
    """Read a ``.pals.yaml`` or ``.pals.json`` file; errors name the file and the line."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise LatticeError(f"PALS file '{path}' does not exist")
    text = path.read_text()
    try:
        if path.name.endswith(".json"):
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise LatticeError(f"{path}, line {err.lineno}: malformed JSON: {err.msg}") from None
    except Exception as err:  # yaml.YAMLError carries its own line (1-based in the message)
        mark = getattr(err, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise LatticeError(f"{path}{line}: malformed YAML: {getattr(err, 'problem', err)}") from None
    try:
        return from_pals(doc, source=str(path))
    except LatticeError as err:
        raise LatticeError(_with_line(str(err), text, str(path))) from None


def _with_line(msg: str, text: str, path: str) -> str:
    """Add the line of the element an error names (``element 'x'``) to the message."""
    import re

    m = re.search(r"element '([^']+)'", msg)
    if m is None:
        return msg
    for no, line in enumerate(text.splitlines(), 1):
        if re.search(rf"(^|[\s\"{{]){re.escape(m.group(1))}[\"]?\s*:", line):
            return msg.replace(path, f"{path}, line {no}", 1) if path in msg else f"{path}, line {no}: {msg}"
    return msg
