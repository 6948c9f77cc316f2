"""Compile a `Lattice` into a static `LineSpec`: kernels, a parameter table and flag setters.

Elements that share a static signature (type, physics, method, parameter layout,
misalignment, aperture) share one kernel; the tracking loop scans over placements with a
``lax.switch`` on the kernel index, so compile time does not grow with the element count.
Placements that do nothing (markers, zero-length drifts) are left out of the scan.

`compile_recorded` also notes where every table cell's number comes from
(`Lattice.value_index`) and which values each kernel choice read (`KernelChoice`), so that
`jacc.engine.cache` can refresh the table from new values without compiling again.
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


def _check_fields(el: Element, physics: ElementPhysics) -> None:
    for f in physics.fields:
        if not hasattr(el, f) and not (f == "frequency" and el.element_name == "RFCavity"):
            raise TypeError(f"{type(physics).__name__} reads field '{f}' that {el.element_name} "
                            f"'{el.name}' does not have")


def _specialise(physics: ElementPhysics, el: Element) -> ElementPhysics:
    """Copy static options of the description (e.g. a DipoleEdge's ``side``) into the physics."""
    if physics is None:
        return None
    names = {f.name for f in dataclasses.fields(physics)}
    updates = {}
    numeric = el.numeric_fields()
    for fname in type(el).model_fields:
        if fname in _NON_PARAM or fname in numeric or fname not in names:
            continue
        updates[fname] = getattr(el, fname)
    return dataclasses.replace(physics, **updates) if updates else physics


def _is_passive(el: Element) -> bool:
    return el.element_name in _PASSIVE or (el.element_name in ("Monitor", "Drift") and el.l == 0.0)


class _Reads(dict):
    """A dict that notes which keys were read: the values a compile-time choice depended on."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)

    def _all(self):
        self.read.update(super().keys())

    def __iter__(self):
        self._all()
        return super().__iter__()

    def keys(self):
        self._all()
        return super().keys()

    def values(self):
        self._all()
        return super().values()

    def items(self):
        self._all()
        return super().items()


_MISALIGN = ("dx", "dy", "tilt", "dtilt")


@dataclass(frozen=True, eq=False)
class KernelChoice:
    """How one scan step's kernel was chosen from values known at compile time.

    ``decide(values)`` (values: field -> number or list; misalignments as ``"@dx"``...)
    returns ``((kernel, frequency_derived), fields read)``. The compiled line stays valid
    while re-deciding with the current values gives the same outcome.
    """

    kind: str
    physics: ElementPhysics | None
    method: Method | None
    layout: tuple[tuple[str, int], ...]
    aperture: str | None
    constant_fields: frozenset
    misaligned_forced: bool
    specialise: bool
    harmonic_frequency: float | None = None  # RF: harmon * beta0 * c / length, when harmon set

    def decide(self, values) -> tuple[tuple[KernelSpec, bool], set[str]]:
        reads: set[str] = set()
        vals = {f: values[f] for f, _ in self.layout}
        derived = False
        if self.harmonic_frequency is not None:
            reads.add("frequency")
            if values["frequency"] == 0.0:
                vals["frequency"], derived = self.harmonic_frequency, True
        physics, method = self.physics, self.method
        if self.specialise and physics is not None:
            constants = _Reads({f: v for f, v in vals.items() if f in self.constant_fields})
            physics, method = physics.simplify(method, constants)
            reads |= constants.read
        if hasattr(method, "resolve"):
            # methods whose slicing depends on values (Xsuite's automatic kick count) fix it
            # from the values at compile time, as the reference code does
            seen = _Reads(vals)
            method = method.resolve(_as_sector(self.kind, seen))
            reads |= seen.read
        misaligned = self.misaligned_forced
        if not misaligned:
            reads.update("@" + f for f in _MISALIGN)
            misaligned = any(values["@" + f] != 0.0 for f in _MISALIGN)
        ks = KernelSpec(self.kind, physics, method, self.layout, bool(misaligned), self.aperture)
        return (ks, derived), reads


@dataclass
class _Step:
    """One scan step while compiling: its kernel, parameter row and where the numbers come from."""

    placement: int
    kernel: KernelSpec
    choice: KernelChoice
    inputs: dict  # field -> value_index key of what `choice.decide` reads
    reads: set
    lists: set  # the inputs that are lists (Multipole knl, ksl...)
    row: list
    cells: list  # per column: value_index key of the number there, or None (a constant)
    writes: list  # (col, size, source) of the dynamic parameters reaching the row
    dyn: list  # (dynamic key, value, value_index key)
    derived: bool = False  # an RF frequency from the harmonic number (a constant cell)


@dataclass
class CompileRecord:
    """What `compile_lattice` read, for refreshing its table from new values (`jacc.engine.cache`).

    ``steps``: the `_Step` of each scan step; ``geometry``: value keys that move s positions
    (lengths, rbend angles, ``s0``); ``knob_dyn``: the differentiable knobs;
    ``setter_consts``: per setter, the value keys of the constant knobs it reads.
    """

    steps: list
    geometry: list
    knob_dyn: list
    setter_consts: list


def compile_lattice(lat: Lattice, ref: Reference, preset: Preset, *, specialise: bool = True) -> LineSpec:
    """Compile ``lat`` for reference ``ref`` with the models of ``preset``.

    ``specialise``: let each element's physics replace its model by a cheaper one that gives
    the same map for the values known at compile time (`ElementPhysics.simplify`); the
    compiled program then depends on those values (e.g. whether a skew gradient is zero).
    """
    return compile_recorded(lat, ref, preset, specialise=specialise)[0]


@dataclass
class _Context:
    lat: Lattice
    ref: Reference
    preset: Preset
    specialise: bool
    elements: list
    length: float
    flagged_by_def: dict
    diff_knobs: set
    occurrence: list


def compile_recorded(lat: Lattice, ref: Reference, preset: Preset, *,
                     specialise: bool = True) -> tuple[LineSpec, CompileRecord]:
    """`compile_lattice`, plus the record of which value each table cell and choice read."""
    lat._sync()
    elements = [lat.element_at(i) for i in range(len(lat.line))]
    seen: dict[str, int] = {}
    occurrence = []
    for dname in lat.line:
        seen[dname] = seen.get(dname, 0) + 1
        occurrence.append(seen[dname])
    ctx = _Context(lat, ref, preset, specialise, elements, sum(e.path_length for e in elements),
                   {d: set(e.diff_params) for d, e in lat.definitions.items()},
                   {k for k, kn in lat.knobs.items() if kn.diff}, occurrence)
    steps: list[_Step] = []
    placement_step = np.zeros(len(elements), dtype=np.int64)
    for i, el in enumerate(elements):
        step = _compile_step(ctx, i, el)
        if step is not None:
            steps.append(step)
        placement_step[i] = len(steps)
    return _assemble(ctx, steps, placement_step)


def _slot(lat: Lattice, i: int, field: str) -> tuple:
    """`Lattice.value_index` key of ``field`` as placement ``i`` sees it."""
    if field in lat.overrides.get(i, {}):
        return ("pl", i, field)
    return ("def", lat.line[i], field)


def _compile_step(ctx: _Context, i: int, el: Element) -> _Step | None:
    """The scan step of placement ``i`` (None for a placement that does nothing)."""
    lat = ctx.lat
    if _is_passive(el) and el.aperture is None and el.element_name not in _PASSIVE[1:]:
        return None
    dname, kind = lat.line[i], el.element_name
    aperture = el.aperture.shape if el.aperture is not None else None
    ap_ab = (el.aperture.a, el.aperture.b) if el.aperture is not None else None
    ap_keys = _slot(lat, i, "aperture")
    physics, method, harmonic = None, None, None
    if kind in _PASSIVE or _is_passive(el):
        if kind in _PASSIVE[1:]:
            aperture = "rectangle" if kind == "RectangularAperture" else "ellipse"
            ap_ab, ap_keys = (el.a, el.b), (_slot(lat, i, "a"), _slot(lat, i, "b"))
    else:
        model_kind = "Drift" if kind == "Monitor" else kind
        physics, method = ctx.preset.model(model_kind, el.name)
        physics = _specialise(physics, el)
        fixed = ctx.preset.fixed_options(kind)
        if fixed:
            physics = dataclasses.replace(physics, **fixed)
        _check_fields(el, physics)
        if kind == "RFCavity" and el.harmon:
            # harmonic number -> frequency of the reference particle's revolution
            harmonic = el.harmon * ctx.ref.beta0 * const.c / ctx.length
    fields = physics.fields if physics is not None else ()
    values = {f: _value(el, f) for f in fields}
    values.update({"@" + f: getattr(el, f) for f in _MISALIGN})
    ov = lat.overrides.get(i, {})
    own_flags = set(ov.get("diff_params", []))
    def_flags = set() if "diff_params" in ov else ctx.flagged_by_def[dname]
    src = lambda f: _source(lat, dname, ctx.occurrence[i], f, own_flags, def_flags,  # noqa: E731
                            ctx.diff_knobs, ov)
    sources = {f: src(f) for f in fields}
    layout = tuple((f, len(values[f]) if isinstance(values[f], list) else 1) for f in fields)
    forced = bool(set(_MISALIGN) & (own_flags | def_flags)
                  or _has_knob_expr(lat, dname, _MISALIGN, ctx.diff_knobs))
    choice = KernelChoice(kind, physics, method, layout, aperture,
                          frozenset(f for f in fields if sources[f] is None), forced,
                          ctx.specialise and physics is not None, harmonic)
    (ks, derived), reads = choice.decide(values)
    inputs = {f: _slot(lat, i, f) for f in fields}
    inputs.update({"@" + f: _slot(lat, i, f) for f in _MISALIGN})
    step = _Step(i, ks, choice, inputs, reads, {f for f, v in values.items() if isinstance(v, list)},
                 [], [], [], [], derived)
    for f, size in layout:
        v = harmonic if (derived and f == "frequency") else values[f]
        key = None if (derived and f == "frequency") else inputs[f]
        _append(step, v, key, size)
        if sources[f] is not None:
            step.writes.append((len(step.row) - size, size, sources[f]))
            step.dyn.append((sources[f], values[f], inputs[f]))
    if ks.misaligned:
        for f in _MISALIGN:
            _append(step, values["@" + f], inputs["@" + f], 1)
            if src(f) is not None:
                step.writes.append((len(step.row) - 1, 1, src(f)))
                step.dyn.append((src(f), values["@" + f], inputs["@" + f]))
    if aperture is not None:
        keys = ap_keys if isinstance(ap_keys[0], tuple) else (ap_keys, ap_keys)
        offsets = (0, 0) if isinstance(ap_keys[0], tuple) else (0, 1)
        step.row += [float(ap_ab[0]), float(ap_ab[1])]
        step.cells += [(keys[0], offsets[0]), (keys[1], offsets[1])]
    return step


def _value(el: Element, f: str):
    v = getattr(el, f)
    return [float(a) for a in v] if isinstance(v, list) else float(v)


def _append(step: _Step, value, key, size: int) -> None:
    """Add ``value`` (a number or a list of ``size``) to the row, noting where it is read."""
    if size == 1 and not isinstance(value, list):
        step.row.append(float(value))
        step.cells.append(None if key is None else (key, 0))
    else:
        step.row += [float(v) for v in value]
        step.cells += [None if key is None else (key, k) for k in range(size)]


def _assemble(ctx: _Context, steps: list[_Step], placement_step: np.ndarray):
    """The `LineSpec` and its `CompileRecord` from the compiled steps."""
    lat = ctx.lat
    kernels: dict[KernelSpec, int] = {}
    for st in steps:
        kernels.setdefault(st.kernel, len(kernels))
    dyn: dict = {k: lat.knobs[k].value for k in ctx.diff_knobs}
    pending: dict[tuple, list[int]] = {}
    for r, st in enumerate(steps):
        for col, size, src in st.writes:
            pending.setdefault((col, size) + src, []).append(r)
        for src, value, _ in st.dyn:
            if src[0] == "key" and src[1] not in dyn:
                dyn[src[1]] = value
    setters, setter_consts = [], []
    for (col, size, how, payload), rows in pending.items():
        if how == "key":
            setters.append(Setter(tuple(rows), col, size, key=payload))
            setter_consts.append(())
        else:
            expr = lat.expression(*payload)
            names = tuple(n for n in expr.names if n not in ctx.diff_knobs)
            setters.append(Setter(tuple(rows), col, size, expr=expr,
                                  consts=tuple((n, lat.knobs[n].value) for n in names)))
            setter_consts.append(tuple(("knob", n) for n in names))
    kinds = tuple(kernels)
    width = max([k.width for k in kinds] + [1])
    table = np.zeros((len(steps), width))
    for r, st in enumerate(steps):
        table[r, : len(st.row)] = st.row
    elements = ctx.elements
    names = tuple(lat.line)
    s_end = lat.s0 + np.cumsum([e.path_length for e in elements]) if elements else np.zeros(0)
    monitors = np.array([i for i, e in enumerate(elements) if e.element_name == "Monitor"], dtype=np.int64)
    kernel_index = np.asarray([kernels[st.kernel] for st in steps], dtype=np.int32)
    # the signature names what a program depends on: constant knob values in the setters
    # are numbers of the table, not structure
    setter_sig = tuple((s.rows, s.col, s.size, s.key, None if s.expr is None else s.expr.text)
                       for s in setters)
    signature = (kinds, kernel_index.tobytes(), setter_sig, tuple(sorted(dyn)), names,
                 np.asarray(s_end).tobytes(), monitors.tobytes())
    spec = LineSpec(
        kernels=kinds, kernel_index=kernel_index, table=table,
        step_placement=np.asarray([st.placement for st in steps], dtype=np.int64),
        placement_step=placement_step, names=names, s_end=np.asarray(s_end),
        element_types=tuple(e.element_name for e in elements), monitors=monitors,
        setters=tuple(setters), dynamic_init=dyn, ref=ctx.ref, length=ctx.length, s0=lat.s0,
        signature=signature,
    )
    geometry = [_slot(lat, i, "l") for i in range(len(elements))]
    geometry += [_slot(lat, i, "angle") for i, e in enumerate(elements) if e.element_name == "RBend"]
    geometry.append(("s0",))
    record = CompileRecord(steps, geometry, [(k, ("knob", k)) for k in ctx.diff_knobs], setter_consts)
    return spec, record


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
