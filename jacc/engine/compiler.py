"""Compile a `Lattice` into a static `LineSpec`: kernels, a parameter table and flag setters.

Elements that share a static signature (type, physics, method, parameter layout,
misalignment, aperture) share one kernel; the tracking loop scans over placements with a
``lax.switch`` on the kernel index, so compile time does not grow with the element count.
Placements that do nothing (markers, zero-length drifts) are left out of the scan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import scipy.constants as const

from jacc.lattice import Element, Lattice
from jacc.lattice.expressions import Expression
from jacc.physics.base import ElementPhysics, Method, Reference

from .presets import Preset

_PASSIVE = ("Marker", "RectangularAperture", "EllipticalAperture")
# Fields of the description that are static for the engine (part of a kernel's signature).
_NON_PARAM = {"element_name", "name", "aperture", "diff_params", "extra"}


@dataclass(frozen=True)
class KernelSpec:
    """Static signature of a kernel: what one scan step computes.

    Attributes:
        kind: element type name.
        physics, method: the model objects.
        layout: ``(field, size)`` pairs read from a parameter row, in order.
        misaligned: the step applies dx, dy, tilt + dtilt (four extra columns).
        aperture: aperture shape checked at the entrance (two extra columns a, b), or None.
    """

    kind: str
    physics: ElementPhysics | None
    method: Method | None
    layout: tuple[tuple[str, int], ...]
    misaligned: bool = False
    aperture: str | None = None

    @property
    def width(self) -> int:
        return sum(n for _, n in self.layout) + 4 * self.misaligned + 2 * (self.aperture is not None)


@dataclass(frozen=True)
class Setter:
    """Writes a traced value into the parameter table: rows x [col, col + size).

    ``key`` names a dynamic parameter (``"qf.k1"``, ``"qf:3.k1"``); or ``expr`` computes the
    value from knobs (``knobs`` lists the dynamic knob names it reads, ``consts`` the others).
    """

    rows: tuple[int, ...]
    col: int
    size: int
    key: str | None = None
    expr: Expression | None = None
    consts: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, eq=False)
class LineSpec:
    """Static structure of a compiled line (hashable by identity; arrays are numpy constants).

    Attributes:
        kernels: distinct kernel signatures.
        kernel_index: kernel of each scan step, shape (n_steps,).
        table: parameter row of each scan step, shape (n_steps, width).
        step_placement: placement index of each scan step.
        placement_step: for each placement, the number of scan steps done at its exit.
        names, s_end: placement names and exit s [m] (rows of optics tables).
        element_types: element type of each placement.
        monitors: placement indices of the monitors (BPMs).
        setters: how dynamic parameters enter the table.
        dynamic_init: initial values of the dynamic parameters (flagged fields and knobs).
        ref: reference constants.
        length: path length [m]; s0: s at the start [m].
    """

    kernels: tuple[KernelSpec, ...]
    kernel_index: np.ndarray
    table: np.ndarray
    step_placement: np.ndarray
    placement_step: np.ndarray
    names: tuple[str, ...]
    s_end: np.ndarray
    element_types: tuple[str, ...]
    monitors: np.ndarray
    setters: tuple[Setter, ...]
    dynamic_init: dict
    ref: Reference
    length: float
    s0: float = 0.0
    signature: tuple = field(default=())

    @property
    def n_steps(self) -> int:
        return int(self.kernel_index.shape[0])


def _param_values(el: Element, physics: ElementPhysics, length: float, ref: Reference) -> dict:
    """Values of the physics fields of ``el`` (derived fields filled in)."""
    vals = {}
    for f in physics.fields:
        if f == "frequency" and el.element_name == "RFCavity" and el.frequency == 0.0 and el.harmon:
            # Harmonic number -> frequency of the reference particle's revolution.
            vals[f] = el.harmon * ref.beta0 * const.c / length
        elif hasattr(el, f):
            v = getattr(el, f)
            vals[f] = [float(a) for a in v] if isinstance(v, list) else float(v)
        else:
            raise TypeError(f"{type(physics).__name__} reads field '{f}' that {el.element_name} "
                            f"'{el.name}' does not have")
    return vals


def _specialise(physics: ElementPhysics, el: Element) -> ElementPhysics:
    """Copy static options of the description (e.g. a DipoleEdge's ``side``) into the physics."""
    if physics is None:
        return None
    names = {f.name for f in dataclasses.fields(physics)}
    updates = {}
    for fname, info in type(el).model_fields.items():
        if fname in _NON_PARAM or fname in el.numeric_fields() or fname not in names:
            continue
        updates[fname] = getattr(el, fname)
    return dataclasses.replace(physics, **updates) if updates else physics


def _is_passive(el: Element) -> bool:
    return el.element_name in _PASSIVE or (el.element_name in ("Monitor", "Drift") and el.l == 0.0)


def compile_lattice(lat: Lattice, ref: Reference, preset: Preset, *, specialise: bool = True) -> LineSpec:
    """Compile ``lat`` for reference ``ref`` with the models of ``preset``.

    ``specialise``: let each element's physics replace its model by a cheaper one that gives
    the same map for the values known at compile time (`ElementPhysics.simplify`); the
    compiled program then depends on those values (e.g. whether a skew gradient is zero).
    """
    lat._sync()
    elements = [lat.element_at(i) for i in range(len(lat.line))]
    length = sum(e.path_length for e in elements)
    kernels: dict[KernelSpec, int] = {}
    rows, kidx, step_pl, vals_per_step = [], [], [], []
    placement_step = np.zeros(len(elements), dtype=np.int64)
    flagged_by_def = {d: set(e.diff_params) for d, e in lat.definitions.items()}
    occurrence: dict[str, int] = {}
    setters: list[Setter] = []
    dyn: dict = {}
    diff_knobs = {k for k, kn in lat.knobs.items() if kn.diff}
    for k in diff_knobs:
        dyn[k] = lat.knobs[k].value
    pending: dict[tuple, list[int]] = {}

    for i, el in enumerate(elements):
        dname = lat.line[i]
        occurrence[dname] = occurrence.get(dname, 0) + 1
        if _is_passive(el) and el.aperture is None and el.element_name not in _PASSIVE[1:]:
            placement_step[i] = len(kidx)
            continue
        kind = el.element_name
        aperture = el.aperture.shape if el.aperture is not None else None
        ap_ab = (el.aperture.a, el.aperture.b) if el.aperture is not None else None
        if kind in _PASSIVE or _is_passive(el):
            physics, method, vals = None, None, {}
            if kind in _PASSIVE[1:]:
                aperture = "rectangle" if kind == "RectangularAperture" else "ellipse"
                ap_ab = (el.a, el.b)
        else:
            model_kind = "Drift" if kind == "Monitor" else kind
            physics, method = preset.model(model_kind, el.name)
            physics = _specialise(physics, el)
            fixed = preset.fixed_options(kind)
            if fixed:
                physics = dataclasses.replace(physics, **fixed)
            vals = _param_values(el, physics, length, ref)
        ov = lat.overrides.get(i, {})
        own_flags = set(ov.get("diff_params", []))
        def_flags = set() if "diff_params" in ov else flagged_by_def[dname]
        sources = {f: _source(lat, dname, occurrence[dname], f, own_flags, def_flags, diff_knobs, ov)
                   for f in vals}
        if specialise and physics is not None:
            constants = {f: v for f, v in vals.items() if sources[f] is None}
            physics, method = physics.simplify(method, constants)
        if hasattr(method, "resolve"):
            # methods whose slicing depends on values (Xsuite's automatic kick count) fix it
            # from the values at compile time, as the reference code does
            method = method.resolve(_as_sector(kind, vals))
        misaligned = bool(el.dx or el.dy or el.tilt or el.dtilt
                          or {"dx", "dy", "tilt", "dtilt"} & (own_flags | def_flags)
                          or _has_knob_expr(lat, dname, ("dx", "dy", "tilt", "dtilt"), diff_knobs))
        layout = tuple((f, len(v) if isinstance(v, list) else 1) for f, v in vals.items())
        ks = KernelSpec(kind, physics, method, layout, misaligned, aperture)
        kernels.setdefault(ks, len(kernels))
        row, col = [], 0
        for f, v in vals.items():
            size = len(v) if isinstance(v, list) else 1
            row += v if isinstance(v, list) else [v]
            src = sources[f]
            if src is not None:
                pending.setdefault((col, size) + src, []).append(len(kidx))
                _init_dynamic(dyn, src, getattr(el, f) if hasattr(el, f) else v)
            col += size
        if misaligned:
            row += [el.dx, el.dy, el.tilt, el.dtilt]
            for f, c in (("dx", col), ("dy", col + 1), ("tilt", col + 2), ("dtilt", col + 3)):
                src = _source(lat, dname, occurrence[dname], f, own_flags, def_flags, diff_knobs, ov)
                if src is not None:
                    pending.setdefault((c, 1) + src, []).append(len(kidx))
                    _init_dynamic(dyn, src, getattr(el, f))
            col += 4
        if aperture is not None:
            row += list(ap_ab)
        rows.append(row)
        kidx.append(kernels[ks])
        step_pl.append(i)
        placement_step[i] = len(kidx)

    for (col, size, how, payload), steps in pending.items():
        if how == "key":
            setters.append(Setter(tuple(steps), col, size, key=payload))
        else:
            expr = lat.expression(*payload)
            consts = tuple((n, lat.knobs[n].value) for n in expr.names if n not in diff_knobs)
            setters.append(Setter(tuple(steps), col, size, expr=expr, consts=consts))

    width = max([k.width for k in kernels] + [1])
    table = np.zeros((len(rows), width))
    for r, row in enumerate(rows):
        table[r, : len(row)] = row
    names = tuple(lat.line)
    s_end = lat.s0 + np.cumsum([e.path_length for e in elements]) if elements else np.zeros(0)
    monitors = np.array([i for i, e in enumerate(elements) if e.element_name == "Monitor"], dtype=np.int64)
    kinds = tuple(kernels)
    kernel_index = np.asarray(kidx, dtype=np.int32)
    signature = (kinds, kernel_index.tobytes(), tuple(setters), tuple(sorted(dyn)), names,
                 np.asarray(s_end).tobytes(), monitors.tobytes())
    return LineSpec(
        kernels=kinds, kernel_index=kernel_index, table=table,
        step_placement=np.asarray(step_pl, dtype=np.int64), placement_step=placement_step,
        names=names, s_end=np.asarray(s_end), element_types=tuple(e.element_name for e in elements),
        monitors=monitors, setters=tuple(setters), dynamic_init=dyn, ref=ref, length=length,
        s0=lat.s0, signature=signature,
    )


def _as_sector(kind: str, vals: dict) -> dict:
    """Field values as the physics sees them (an RBend as its sector bend)."""
    if kind != "RBend":
        return vals
    from jacc.physics.bend import rbend_to_sbend

    out = dict(vals)
    out["l"], out["e1"], out["e2"] = (float(v) for v in rbend_to_sbend(vals["l"], vals["angle"],
                                                                         vals["e1"], vals["e2"]))
    return out


def _has_knob_expr(lat, dname, fields, diff_knobs) -> bool:
    for f in fields:
        e = lat.expression(dname, f)
        if e is not None and set(e.names) & diff_knobs:
            return True
    return False


def _source(lat, dname, occ, fname, own_flags, def_flags, diff_knobs, overrides):
    """Where a table cell's traced value comes from, or None when it is a constant."""
    if fname in own_flags:
        return ("key", f"{dname}:{occ}.{fname}")
    if fname in overrides:
        return None
    if fname in def_flags:
        return ("key", f"{dname}.{fname}")
    e = lat.expression(dname, fname)
    if e is not None and set(e.names) & diff_knobs:
        return ("expr", (dname, fname))
    return None


def _init_dynamic(dyn: dict, src, value) -> None:
    if src[0] == "key" and src[1] not in dyn:
        dyn[src[1]] = [float(v) for v in value] if isinstance(value, list) else float(value)
