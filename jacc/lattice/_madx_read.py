"""Walk MAD-X's expanded sequence (cpymad) into definitions, placements and overrides.

Used by :func:`jacc.lattice.io_madx.read_madx`; the element rules are listed there.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from ._madx_knobs import MadxKnobs
from ._madx_tables import APERTURES, FIELDS, IGNORED, KEEP_MADX_TYPE, MADX_TYPES
from .base import Aperture, Element, LatticeError, PhysicsWarning
from .elements import ELEMENTS_BY_NAME, DipoleEdge, RBend, SBend
from .expressions import Expression, ExpressionError

__all__ = ["SequenceBuilder", "base_type"]

_GAP_TOL = 1e-12      # [m] drifts below this are rounding noise of MAD-X's positions
_EXPR_RTOL = 1e-9     # rewritten expression vs MAD-X's value: a rewrite bug, not rounding


class SequenceBuilder:
    """Accumulates definitions, placements, overrides and expressions while walking."""

    def __init__(self, madx, seq_name: str, charge: float = 1.0, source: str | None = None):
        self.madx, self.seq_name = madx, seq_name
        self.lost = lost_expressions(source) if source else {}
        # MAD-X's VOLT is the energy gain [MV] of the reference particle; JACC's voltage is
        # per unit charge (energy gain |q| V), as Xsuite's importer: VOLT * 1e6 / |q|.
        self.voltage_scale = 1e6 / abs(charge)
        self.definitions: dict[str, Element] = {}
        self.line: list[str] = []
        self.overrides: dict[int, dict[str, Any]] = {}
        self.expressions: dict[str, dict[str, str]] = {}
        self.knobs = MadxKnobs(madx)
        self._drifts: dict[str, str] = {}   # rounded length text -> definition name

    def walk(self, seq) -> None:
        """Place every element of the expanded sequence, with MAD-X's own drifts between them.

        MAD-X's implicit drifts are the gaps between ``at`` positions, except that a gap
        slightly negative (positions rounded in the file, e.g. a bend overlapping its dipedge
        by 3e-9 m in IOTA) gives no drift: its TWISS ``s`` then lags the positions. Using its
        drift lengths reproduces MAD-X's ``s`` and circumference, not the rounded positions.
        """
        for el in seq.expanded_elements:
            kind = base_type(el)
            if kind == "marker" and el.name.endswith(("$start", "$end")):
                continue
            if kind == "drift" and re.fullmatch(r"drift_\d+", el.name):
                self._gap(float(el.length))  # MAD-X's implicit drift: shared definitions
                continue
            self._place(el)
        self._assign_edge_sides()

    def _gap(self, gap: float) -> None:
        if gap <= _GAP_TOL:
            return
        key = f"{gap:.12g}"
        name = self._drifts.get(key)
        if name is None:
            # "drift_1p0", never MAD-X's own "drift_<n>" (it reuses those names for its gaps)
            text = key if any(c in key for c in ".e") else key + ".0"
            name = _unique("drift_" + text.replace(".", "p").replace("-", "m").replace("+", ""),
                           self.definitions)
            self.definitions[name] = ELEMENTS_BY_NAME["Drift"](name=name, l=float(key))
            self._drifts[key] = name
        self.line.append(name)

    def _place(self, el) -> None:
        name = el.name
        if name not in self.definitions:
            self.definitions[name] = self._define(el)
        over = _placement_errors(el, self.definitions[name])
        if over:
            self.overrides[len(self.line)] = over
        self.line.append(name)

    def _define(self, el) -> Element:
        kind = base_type(el)
        jtype = MADX_TYPES.get(kind)
        if jtype is None:
            raise LatticeError(
                f"element '{el.name}': MAD-X type '{kind}' has no JACC counterpart; supported: "
                f"{sorted(MADX_TYPES)}")
        par = el.cmdpar
        fields: dict[str, Any] = {"name": el.name}
        exprs: dict[str, str] = {}
        madx_extra: dict[str, Any] = {}
        if kind in KEEP_MADX_TYPE:
            madx_extra["type"] = kind
        length = float(par["l"].value) if "l" in par else 0.0  # rbend: the chord, as JACC
        if jtype == "Drift" and length == 0.0:
            jtype = "Marker"
        fields["l"] = length
        if "tilt" in par:
            fields["tilt"] = float(par["tilt"].value)
            self._expression(el, "tilt", par["tilt"], 1.0, exprs)
        for jfield, (attr, scale) in FIELDS[jtype].items():
            if attr not in par:
                continue
            p = par[attr]
            if isinstance(p.value, list):
                fields[jfield] = _trim([float(v) for v in p.value])
                if any(isinstance(x, str) and _has_names(x) for x in (p.expr or [])):
                    warnings.warn(f"element '{el.name}': {attr} holds expressions; list fields "
                                  "are imported as values (no knobs)", PhysicsWarning, stacklevel=5)
                continue
            value = float(p.value)
            if jfield == "voltage":
                scale = self.voltage_scale
            if attr == "fintx" and (not p.inform or value < 0):
                continue  # MAD-X: fintx unset (or negative) means "as fint"
            if attr == "freq" and not p.inform:
                continue
            if jfield == "angle" and value == 0.0:
                continue  # a multipole's ANGLE 0 means "bent by KNL[0]" in MAD-X: JACC's None
            fields[jfield] = int(round(value)) if jfield == "harmon" else scale * value
            if jfield != "harmon":
                self._expression(el, jfield, p, scale, exprs)
        # MAD-X 5.09 permanent misalignments on the element itself.
        for attr, jfield in (("dx", "dx"), ("dy", "dy"), ("dpsi", "dtilt")):
            if attr in par and par[attr].inform and par[attr].value:
                fields[jfield] = float(par[attr].value)
        aperture, ap_extra = _aperture(el)
        if aperture is not None:
            fields["aperture"] = aperture
        madx_extra.update(ap_extra)
        used = {a for a, _ in FIELDS[jtype].values()}
        for attr, p in par.items():
            if not p.inform or attr in IGNORED or attr in used:
                continue
            value = p.value
            if value in (0, 0.0, "", None, False) or (isinstance(value, list) and not any(value)):
                continue
            madx_extra[attr] = value
            warnings.warn(f"element '{el.name}' ({kind}): attribute '{attr}' = {value!r} is not "
                          "modelled by JACC; kept in extra['madx']", PhysicsWarning, stacklevel=5)
        if madx_extra:
            fields["extra"] = {"madx": madx_extra}
        try:
            element = ELEMENTS_BY_NAME[jtype].model_validate(fields)
        except ValueError as err:
            raise LatticeError(f"element '{el.name}' ({kind}): {err}") from None
        if exprs:
            self.expressions[el.name] = exprs
        return element

    def _expression(self, el, jfield: str, p, scale: float, exprs: dict[str, str]) -> None:
        """Record ``jfield``'s expression in knobs when MAD-X has a deferred one with variables."""
        text = p.expr
        if text is None:
            text = self.lost.get((el.name, p.name))
        if not isinstance(text, str) or not _has_names(text):
            return
        saved = self.knobs.snapshot()  # a tie not kept must leave no knob behind
        try:
            rewritten = self.knobs.rewrite(text)
            expr = Expression.parse(rewritten)
            if not expr.names:
                return
            full = rewritten if scale == 1.0 else f"({rewritten}) * {scale!r}"
            got = float(Expression.parse(full).evaluate(self.knobs.leaves))
        except ExpressionError as err:
            self.knobs.restore(saved)
            warnings.warn(f"element '{el.name}': {p.name} := {text} cannot be kept as a knob "
                          f"expression ({err}); imported as its value", PhysicsWarning, stacklevel=5)
            return
        want = scale * float(p.value)
        if not abs(got - want) <= _EXPR_RTOL * max(abs(want), 1e-300):
            self.knobs.restore(saved)
            warnings.warn(f"element '{el.name}': {p.name} := {text} rewritten as {full} gives "
                          f"{got!r}, MAD-X {want!r}; imported as the value", PhysicsWarning,
                          stacklevel=5)
            return
        exprs[jfield] = full

    def _assign_edge_sides(self) -> None:
        """A dipedge after a bend is its exit face; otherwise an entry face (MAD-X has no side)."""
        sides: dict[str, list[tuple[int, str]]] = {}
        for i, name in enumerate(self.line):
            if isinstance(self.definitions[name], DipoleEdge):
                sides.setdefault(name, []).append((i, self._edge_side(i)))
        for name, placed in sides.items():
            first = placed[0][1]
            if first != self.definitions[name].side:
                self.definitions[name] = self.definitions[name].with_updates(side=first)
            for i, side in placed[1:]:
                if side != first:
                    self.overrides.setdefault(i, {})["side"] = side

    def _edge_side(self, i: int) -> str:
        def neighbour(step):
            j = i + step
            while 0 <= j < len(self.line):
                el = self.definitions[self.line[j]]
                if isinstance(el, (SBend, RBend)):
                    return el
                if el.path_length > 0.0 or isinstance(el, DipoleEdge):
                    return None
                j += step
            return None

        if neighbour(-1) is not None:
            return "exit"
        return "entry"


# MAD-X stores a thick solenoid's ``ks`` as a number even when the file says ``ks := ksel``
# (its ``ksi`` and every other attribute keep the expression): read the tie from the file.
_STATEMENT = re.compile(r"^\s*([a-z_][\w.]*)\s*:\s*solenoid\b(.*)$", re.S)
_KS = re.compile(r"(?<![\w.])ks\s*:=\s*([^,]+)")


def lost_expressions(text: str) -> dict[tuple[str, str], str]:
    """``(element, attribute) -> expression`` of deferred ties MAD-X drops (solenoid ``ks``).

    Only the definitions written in ``text`` (the imported file, not files it calls) are seen;
    the importer keeps a tie only where it reproduces MAD-X's value.
    """
    text = re.sub(r"/\*.*?\*/", " ", text.lower(), flags=re.S)
    text = re.sub(r"(!|//)[^\n]*", " ", text)
    out = {}
    for statement in text.split(";"):
        m = _STATEMENT.match(statement)
        if m is None:
            continue
        ks = _KS.search(m.group(2))
        if ks is not None:
            out[(m.group(1), "ks")] = ks.group(1).strip()
    return out


def _placement_errors(el, definition: Element) -> dict[str, Any]:
    """Per-placement overrides from EALIGN errors, field errors and orbit-correction kicks."""
    al = getattr(el, "align_errors", None)
    fe = getattr(el, "field_errors", None)
    over = error_overrides(definition, {} if al is None else al._asdict(),
                           () if fe is None else fe.dkn, () if fe is None else fe.dks,
                           f"element '{el.name}' (placement {el.occ_cnt})", stacklevel=5)
    for attr, field in (("chkick", "xangle"), ("cvkick", "yangle")):
        kick = getattr(el, attr, 0.0) or 0.0
        if kick and field in type(definition).model_fields:
            over[field] = getattr(definition, field) + kick
    return over


def error_overrides(el: Element, align: dict, dkn, dks, where: str, stacklevel: int) -> dict[str, Any]:
    """Overrides of one placement of ``el`` from MAD-X errors (an imported file's or an ESAVE
    table's): EALIGN ``dx, dy, dpsi`` added to its misalignment, field errors to its
    strengths (`_apply_field_errors`). What JACC does not model (``ds, dphi, dtheta``, field
    errors it cannot place) goes to ``extra['madx']`` with a warning naming ``where``, raised
    at ``stacklevel`` as seen from the caller."""
    over: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, field in (("dx", "dx"), ("dy", "dy"), ("dpsi", "dtilt")):
        if align.get(key):
            over[field] = getattr(el, field) + align[key]
    rest = {k: v for k, v in align.items() if v and k not in ("dx", "dy", "dpsi")}
    if rest:
        extra["align_errors"] = rest
    dkn, dks = list(dkn), list(dks)
    if (any(dkn) or any(dks)) and not _apply_field_errors(el, dkn, dks, over):
        extra["field_errors"] = {"dkn": _trim(dkn), "dks": _trim(dks)}
    if extra:
        warnings.warn(f"{where}: MAD-X errors {extra} are not modelled by JACC; kept in extra['madx']",
                      PhysicsWarning, stacklevel=stacklevel + 1)
        merged = dict(el.extra)
        merged["madx"] = {**merged.get("madx", {}), **extra}
        over["extra"] = merged
    return over


def _apply_field_errors(el: Element, dkn: list[float], dks: list[float], over: dict) -> bool:
    """Add integrated field errors to the strengths of a multipole or a pure thick magnet.

    A multipole's dipole error ``dkn[0]`` changes the field, not the reference bend: without
    an ``angle`` the bend is pinned at the design ``knl[0]``, so the error kicks the orbit (as
    in MAD-X, where EFCOMP errors never move the reference).
    """
    kind = el.element_name
    if kind == "Multipole":
        n = max(len(_trim(dkn)), len(_trim(dks)), len(el.knl), len(el.ksl))
        over["knl"] = [a + b for a, b in zip(_pad(el.knl, n), _pad(dkn, n))]
        over["ksl"] = [a + b for a, b in zip(_pad(el.ksl, n), _pad(dks, n))]
        if _pad(dkn, 1)[0] and el.angle is None:
            over["angle"] = el.knl[0] if el.knl else 0.0
        return True
    order = {"Quadrupole": 1, "Sextupole": 2, "Octupole": 3}.get(kind)
    if order is None or el.l == 0.0:
        return False
    if any(v for i, v in enumerate(dkn) if i != order) or any(v for i, v in enumerate(dks) if i != order):
        return False  # other orders on a thick magnet: not representable by its strengths
    normal, skew = f"k{order}", f"k{order}s"
    over[normal] = getattr(el, normal) + _pad(dkn, order + 1)[order] / el.l
    over[skew] = getattr(el, skew) + _pad(dks, order + 1)[order] / el.l
    return True


def _aperture(el) -> tuple[Aperture | None, dict[str, Any]]:
    par = el.cmdpar
    shape = str(par["apertype"].value).lower() if "apertype" in par else ""
    values = [float(v) for v in par["aperture"].value] if "aperture" in par else []
    explicit = ("apertype" in par and par["apertype"].inform) or (
        "aperture" in par and par["aperture"].inform)
    kind = base_type(el)
    if not explicit and kind in ("rcollimator", "ecollimator"):
        xs = float(par["xsize"].value) if "xsize" in par else 0.0
        ys = float(par["ysize"].value) if "ysize" in par else 0.0
        if xs > 0 and ys > 0:
            return Aperture(shape="rectangle" if kind == "rcollimator" else "ellipse",
                            a=xs, b=ys), {}
        return None, {}
    if not explicit or not any(values):
        return None, {}
    extra: dict[str, Any] = {}
    for attr in ("aper_offset", "aper_tilt"):
        if attr in par and par[attr].inform and _nonzero(par[attr].value):
            extra[attr] = par[attr].value
    if shape not in APERTURES:
        warnings.warn(f"element '{el.name}': aperture type '{shape}' is not modelled by JACC "
                      "(only circle, rectangle, ellipse); kept in extra['madx']",
                      PhysicsWarning, stacklevel=5)
        return None, {**extra, "apertype": shape, "aperture": values}
    if extra:
        warnings.warn(f"element '{el.name}': aperture offset/tilt {extra} not modelled; kept in "
                      "extra['madx']", PhysicsWarning, stacklevel=5)
    a = values[0]
    b = a if shape == "circle" else (values[1] if len(values) > 1 else 0.0)
    if not (a > 0 and b > 0):
        raise LatticeError(f"element '{el.name}': aperture {shape} {values} needs positive sizes")
    return Aperture(shape=shape, a=a, b=b), extra


def base_type(el) -> str:
    # cpymad's Element.base_type costs a MAD-X round trip per call; the name is already known.
    attr = getattr(el, "_attr", None)
    if isinstance(attr, dict) and isinstance(attr.get("base_type"), str):
        return attr["base_type"]
    return el.base_type.name


def _has_names(text: str) -> bool:
    # an identifier not glued to a number (the "e" of 1e-3 is no name)
    return re.search(r"(?<![\w.])[a-z_]", text.lower()) is not None


def _nonzero(value) -> bool:
    return any(value) if isinstance(value, list) else bool(value)


def _trim(values: list[float]) -> list[float]:
    out = list(values)
    while out and out[-1] == 0.0:
        out.pop()
    return out


def _pad(values: list[float], n: int) -> list[float]:
    return list(values[:n]) + [0.0] * (n - len(values[:n]))


def _unique(name: str, taken) -> str:
    out, k = name, 1
    while out in taken:
        k += 1
        out = f"{name}_{k}"
    return out

