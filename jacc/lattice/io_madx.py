"""MAD-X import (through cpymad) and export of a `Lattice`.

Import walks MAD-X's expanded sequence: every element lands at the ``s`` MAD-X gives it (entry
positions), gaps become explicit ``Drift`` placements (one definition per distinct length,
named ``drift_<length>``), a label placed several times becomes one definition with several
placements. Strengths tied to MAD-X variables through deferred expressions (``k1:=kqa1r``,
``kqa1r:=kq01``) keep the tie: the leaf variables become knobs and the field expressions are
rewritten in terms of them. See :func:`read_madx` for the element-by-element rules.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

from ._madx_session import MadxSession
from ._madx_tables import (APERTURES, FIELDS, IGNORED, KEEP_MADX_TYPE, MADX_CONSTANTS,
                           MADX_TYPES)
from ._madx_write import write_madx
from .base import Aperture, Element, LatticeError, PhysicsWarning
from .elements import ELEMENTS_BY_NAME, DipoleEdge, RBend, SBend
from .expressions import CONSTANTS, Expression, ExpressionError
from .lattice import Knob, Lattice

__all__ = ["beam_reference_particle", "from_cpymad", "read_madx", "write_madx"]

_GAP_TOL = 1e-12      # [m] drifts below this are rounding noise of MAD-X's positions
_EXPR_RTOL = 1e-9     # rewritten expression vs MAD-X's value: a rewrite bug, not rounding


def read_madx(path, sequence: str | None = None, *, name: str | None = None,
              timeout: float = 120.0) -> Lattice:
    """Import a MAD-X file through cpymad (``Lattice.from_madx``).

    Args:
        path: MAD-X file (it may ``call`` others, relative to the working directory as in MAD-X).
        sequence: sequence (or line) to import. ``None``: the one named in a ``use`` command,
            else the only sequence not nested in another, else an error listing the candidates.
        name: lattice name (default: the sequence name).
        timeout: seconds after which MAD-X is killed and a LatticeError raised.

    Element rules: drift -> Drift; marker -> Marker; monitor/hmonitor/vmonitor -> Monitor;
    instrument, placeholder, collimator/rcollimator/ecollimator -> Drift (or Marker if thin)
    carrying their aperture; quadrupole, sbend, rbend (``l`` the chord, as MAD-X), dipedge
    (DipoleEdge; ``side`` 'exit' when it follows a bend, else 'entry'), sextupole, octupole,
    multipole, hkicker/vkicker (``kick`` -> xangle/yangle), kicker/tkicker (HVCorrector,
    ``hkick``/``vkick``), solenoid, rfcavity (MV -> V, MHz -> Hz), nllens. ``hgap`` -> gap/2,
    ``h1/h2`` -> h_pole1/2, apertures circle/rectangle/ellipse on any element, EALIGN errors
    (dx, dy, dpsi -> dtilt) and simple field errors as per-placement overrides. Other MAD-X
    types raise LatticeError; attributes JACC does not model go to ``extra["madx"]`` with a
    PhysicsWarning. The beam command is kept in ``lat.extra["beam"]`` (MAD-X units: GeV).

    Raises:
        LatticeError: missing file, MAD-X errors (with MAD-X's message), unknown sequence,
            ambiguous choice, unsupported element type, overlapping elements.
    """
    path = os.fspath(path)
    with MadxSession(timeout=timeout) as session:
        session.call(path)
        lat = _import(session, sequence, source=path)
    if name is not None:
        lat.name = name
    return lat


def from_cpymad(madx, sequence: str | None = None) -> Lattice:
    """Import a sequence from a running cpymad ``Madx`` (same rules as :func:`read_madx`).

    The sequence is (re)activated with ``use`` only when it is not already the active one, so
    errors assigned after an earlier ``use`` are kept.
    """
    return _import(_Borrowed(madx), sequence, source="cpymad")


def beam_reference_particle(beam: dict[str, Any], species: str | None = None):
    """A ``ReferenceParticle`` from a MAD-X beam dict (``lat.extra["beam"]``).

    MAD-X's own mass (its CODATA 2018 table for named particles) and total energy are used, so
    that optics computed in JACC match MAD-X's.

    Args:
        beam: MAD-X beam attributes (``particle``, ``mass`` [GeV], ``charge`` [e], ``energy``
            [GeV]).
        species: species name for the particle (default: MAD-X's ``particle``).
    """
    from jacc.particles import ReferenceParticle

    particle = species or str(beam.get("particle", "positron"))
    return ReferenceParticle.from_energy(particle, float(beam["energy"]) * 1e9,
                                         mass0=float(beam["mass"]) * 1e9,
                                         charge=float(beam["charge"]))


# ---------------------------------------------------------------------------------------- core
class _Borrowed:
    """A user's Madx seen through the session interface (no output capture, no watchdog)."""

    def __init__(self, madx):
        self.madx = madx

    def run(self, what: str, action) -> None:
        try:
            action()
        except Exception as err:
            raise LatticeError(f"{what}: MAD-X failed: {err}") from None


def _import(session, sequence: str | None, source: str) -> Lattice:
    madx = session.madx
    had_beam = bool(list(madx.beams))
    seq_name = _choose_sequence(session, sequence, source)
    seq = madx.sequence[seq_name]
    beam = _beam(madx, seq) if had_beam else None  # not the default beam `use` needed
    builder = _Builder(madx, seq_name)
    builder.walk(seq)
    extra: dict[str, Any] = {}
    if beam is not None:
        extra["beam"] = beam
    try:
        return Lattice(name=seq_name, definitions=builder.definitions, line=builder.line,
                       overrides=builder.overrides, knobs=builder.knobs.knobs(),
                       expressions=builder.expressions, extra=extra)
    except (ValueError, TypeError) as err:
        raise LatticeError(f"{source}, sequence '{seq_name}': {err}") from None


def _choose_sequence(session, sequence: str | None, source: str) -> str:
    """Apply the sequence rule of :func:`read_madx` and make sure it is expanded."""
    madx = session.madx
    names = list(madx.sequence)
    active = _active_sequence(madx)
    if sequence is not None:
        sequence = sequence.lower()
        if sequence == active:
            return sequence
        if sequence not in names:
            # A LINE becomes a sequence only when used; a name that is neither stays unknown.
            _ensure_beam(session, madx, source)
            try:
                session.run(f"{source}: use, period={sequence}",
                            lambda: madx.command.use(period=sequence))
            except LatticeError:
                pass
            if sequence not in list(madx.sequence):
                raise LatticeError(
                    f"{source}: no sequence or line '{sequence}'; sequences available: "
                    f"{names or 'none'}")
            return sequence
    elif active is not None:
        return active
    else:
        nested = set()
        for n in names:
            for el in madx.sequence[n].elements:
                if type(el).__name__ == "Sequence":
                    nested.add(el.name)
        top = [n for n in names if n not in nested]
        if not top:
            raise LatticeError(f"{source}: defines no sequence (and no `use` of a line)")
        if len(top) > 1:
            raise LatticeError(
                f"{source}: ambiguous sequence: {len(top)} top-level sequences {top} and no "
                f"`use` command; pass sequence= one of them")
        sequence = top[0]
    _ensure_beam(session, madx, source)
    session.run(f"{source}: use, sequence={sequence}", lambda: madx.use(sequence))
    return sequence


def _active_sequence(madx) -> str | None:
    """The sequence named in the last ``use`` (MAD-X expands only what was used), or None."""
    try:
        seq = madx.sequence()
    except Exception:  # no current sequence
        seq = None
    # MAD-X's current sequence is also the last one defined: only an expanded one was used.
    if seq is not None and seq.is_expanded:
        return seq.name
    used = [n for n in madx.sequence if madx.sequence[n].is_expanded]
    return used[0] if len(used) == 1 else None


def _ensure_beam(session, madx, source: str) -> None:
    # MAD-X refuses `use` without a beam (fatal); a default beam changes nothing we import.
    if not list(madx.beams):
        session.run(f"{source}: beam", lambda: madx.command.beam())


def _beam(madx, seq) -> dict[str, Any] | None:
    """The beam attached to the sequence (or the default beam), MAD-X units, or None."""
    try:
        beam = seq.beam
    except Exception:
        beam = madx.beams.get("default_beam") if list(madx.beams) else None
    if beam is None:
        return None
    out = {"particle": str(beam["particle"]), "mass": float(beam["mass"]),
           "charge": float(beam["charge"]), "energy": float(beam["energy"]),
           "pc": float(beam["pc"]), "gamma": float(beam["gamma"])}
    bv = float(beam["bv"]) if "bv" in beam else 1.0
    if bv != 1.0:
        warnings.warn(f"beam bv={bv:g}: strengths are imported as written in the file "
                      "(bv is not applied)", PhysicsWarning, stacklevel=4)
        out["bv"] = bv
    return out


# ---------------------------------------------------------------------------------------- knobs
class _Knobs:
    """Rewrites MAD-X deferred expressions in terms of leaf variables (the knobs)."""

    def __init__(self, madx):
        self.madx = madx
        self.leaves: dict[str, float] = {}
        self._cache: dict[str, str] = {}

    def knobs(self) -> dict[str, Knob]:
        return {k: Knob(value=v, description="MAD-X variable") for k, v in self.leaves.items()}

    def rewrite(self, text: str, seen: tuple[str, ...] = ()) -> str:
        """``text`` with every intermediate deferred variable inlined; leaves are recorded."""
        out = text.strip().lower()
        for var in Expression.parse(out).names:
            if var in seen:
                raise ExpressionError(f"variable '{var}' depends on itself")
            repl = self._variable(var, seen + (var,))
            if repl is not None:
                out = re.sub(rf"(?<![\w.]){re.escape(var)}(?![\w.(])", repl, out)
        return out

    def _variable(self, var: str, seen) -> str | None:
        """Replacement text for ``var`` (None: keep the name, it is a leaf knob)."""
        if var in self._cache:
            return self._cache[var]
        g = self.madx.globals
        par = g.cmdpar[var] if var in g else None
        expr = getattr(par, "expr", None) if par is not None else None
        if var in MADX_CONSTANTS and var not in CONSTANTS:
            repl = repr(float(g[var]))
        elif expr is None:
            if par is None:
                warnings.warn(f"MAD-X variable '{var}' is never defined; MAD-X takes 0",
                              PhysicsWarning, stacklevel=6)
            self.leaves[var] = float(g[var]) if par is not None else 0.0
            repl = None
        else:
            inner = self.rewrite(str(expr), seen)
            repl = inner if re.fullmatch(r"[\w.]+", inner) else f"({inner})"
        self._cache[var] = repl
        return repl


# ---------------------------------------------------------------------------------------- build
class _Builder:
    """Accumulates definitions, placements, overrides and expressions while walking."""

    def __init__(self, madx, seq_name: str):
        self.madx, self.seq_name = madx, seq_name
        self.definitions: dict[str, Element] = {}
        self.line: list[str] = []
        self.overrides: dict[int, dict[str, Any]] = {}
        self.expressions: dict[str, dict[str, str]] = {}
        self.knobs = _Knobs(madx)
        self._drifts: dict[str, str] = {}   # rounded length text -> definition name

    def walk(self, seq) -> None:
        """Place every element of the expanded sequence, with MAD-X's own drifts between them.

        MAD-X's implicit drifts are the gaps between ``at`` positions, except that a gap
        slightly negative (positions rounded in the file, e.g. a bend overlapping its dipedge
        by 3e-9 m in IOTA) gives no drift: its TWISS ``s`` then lags the positions. Using its
        drift lengths reproduces MAD-X's ``s`` and circumference, not the rounded positions.
        """
        for el in seq.expanded_elements:
            kind = _base_type(el)
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
            name = _unique("drift_" + key.replace(".", "p").replace("-", "m").replace("+", ""),
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
        kind = _base_type(el)
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
            if attr == "fintx" and (not p.inform or value < 0):
                continue  # MAD-X: fintx unset (or negative) means "as fint"
            if attr == "freq" and not p.inform:
                continue
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
        if not isinstance(text, str) or not _has_names(text):
            return
        try:
            rewritten = self.knobs.rewrite(text)
            expr = Expression.parse(rewritten)
            if not expr.names:
                return
            full = rewritten if scale == 1.0 else f"({rewritten}) * {scale!r}"
            got = float(Expression.parse(full).evaluate(self.knobs.leaves))
        except ExpressionError as err:
            warnings.warn(f"element '{el.name}': {p.name} := {text} cannot be kept as a knob "
                          f"expression ({err}); imported as its value", PhysicsWarning, stacklevel=5)
            return
        want = scale * float(p.value)
        if not abs(got - want) <= _EXPR_RTOL * max(abs(want), 1e-300):
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


def _placement_errors(el, definition: Element) -> dict[str, Any]:
    """Per-placement overrides from EALIGN errors, field errors and orbit-correction kicks."""
    over: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    al = getattr(el, "align_errors", None)
    if al is not None:
        if al.dx:
            over["dx"] = definition.dx + al.dx
        if al.dy:
            over["dy"] = definition.dy + al.dy
        if al.dpsi:
            over["dtilt"] = definition.dtilt + al.dpsi
        rest = {k: v for k, v in al._asdict().items() if v and k not in ("dx", "dy", "dpsi")}
        if rest:
            extra["align_errors"] = rest
    fe = getattr(el, "field_errors", None)
    if fe is not None and (any(fe.dkn) or any(fe.dks)):
        applied = _apply_field_errors(definition, list(fe.dkn), list(fe.dks), over)
        if not applied:
            extra["field_errors"] = {"dkn": _trim(list(fe.dkn)), "dks": _trim(list(fe.dks))}
    for attr, field in (("chkick", "xangle"), ("cvkick", "yangle")):
        kick = getattr(el, attr, 0.0) or 0.0
        if kick and field in type(definition).model_fields:
            over[field] = getattr(definition, field) + kick
    if extra:
        warnings.warn(f"element '{el.name}' (placement {el.occ_cnt}): MAD-X errors {extra} are "
                      "not modelled by JACC; kept in extra['madx']", PhysicsWarning, stacklevel=5)
        merged = dict(definition.extra)
        merged["madx"] = {**merged.get("madx", {}), **extra}
        over["extra"] = merged
    return over


def _apply_field_errors(el: Element, dkn: list[float], dks: list[float], over: dict) -> bool:
    """Add integrated field errors to the strengths of a multipole or a pure thick magnet."""
    kind = el.element_name
    if kind == "Multipole":
        n = max(len(_trim(dkn)), len(_trim(dks)), len(el.knl), len(el.ksl))
        over["knl"] = [a + b for a, b in zip(_pad(el.knl, n), _pad(dkn, n))]
        over["ksl"] = [a + b for a, b in zip(_pad(el.ksl, n), _pad(dks, n))]
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
    kind = _base_type(el)
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


def _base_type(el) -> str:
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

