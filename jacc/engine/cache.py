"""Compiled lines cached by lattice structure, refreshed from the lattice's current numbers.

`compile_lattice` costs tens of milliseconds on a ring like IOTA (element models, flags,
knob expressions), more than the optics it feeds. The public entry points therefore look
their `LineSpec` up by `Lattice.structure_key` and only re-read the numbers: the table is
one gather from `Lattice.numeric_values`, done as `compile_lattice` recorded it.

Some choices of the compiler depend on numbers (the models `ElementPhysics.simplify` and
a method's ``resolve`` pick, whether an element is misaligned, an RF frequency from its
harmonic number, s positions). Each is guarded by the values it read: when one of them
changes, the choice is made again with the new values; a different outcome recompiles
(the programs of an already seen line are then found by its signature).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Hashable

import numpy as np

from jacc.lattice import Lattice
from jacc.physics.base import Reference

from .compiler import CompileRecord, LineSpec, compile_recorded
from .presets import Preset, Xsuite

_MAX_LINES = 32
_LINES: dict = {}  # (structure key, ref, preset key, specialise) -> CompiledLine
_TOKENS: dict = {}  # line signature -> small int naming it in program caches
_PRESET_KEYS: dict = {}  # id(preset) -> (preset, key)
_DEFAULT: list = []


def default_preset() -> Preset:
    """One shared `Xsuite()` (building a preset collects every physics module's models)."""
    if not _DEFAULT:
        _DEFAULT.append(Xsuite())
    return _DEFAULT[0]


def preset_key(preset: Preset) -> Hashable:
    """A hashable key of ``preset``'s models (equal presets give equal keys)."""
    hit = _PRESET_KEYS.get(id(preset))
    if hit is not None and hit[0] is preset:
        return hit[1]
    key = (type(preset), repr(preset.models))
    if len(_PRESET_KEYS) >= 64:
        _PRESET_KEYS.pop(next(iter(_PRESET_KEYS)))
    _PRESET_KEYS[id(preset)] = (preset, key)  # holds the preset: its id is not reused
    return key


def signature_token(spec: LineSpec) -> int:
    """A small integer naming the program structure of ``spec``: programs that take the table
    as an argument (`jacc.track`, `jacc.twiss`) are cached under it.

    It is ``spec.signature`` without the setters and dynamic keys: flagging a parameter
    changes how a table is written, not what a program does with it.
    """
    return _TOKENS.setdefault(_structure(spec), len(_TOKENS))


def signature_digest(spec: LineSpec) -> str:
    """The program structure of ``spec`` (as `signature_token`) as a text that names it in
    every process: the key of programs kept across processes (`jacc._tiered`)."""
    return hashlib.sha256(repr(_structure(spec)).encode()).hexdigest()


def _structure(spec: LineSpec) -> tuple:
    return (spec.kernels, np.asarray(spec.kernel_index).tobytes(), spec.names,
            np.asarray(spec.s_end).tobytes(), np.asarray(spec.monitors).tobytes(),
            np.asarray(spec.placement_step).tobytes(), np.asarray(spec.step_placement).tobytes(),
            spec.element_types, spec.length, spec.s0, spec.table.shape[1])


class CompiledLine:
    """A compiled line and how to refresh its table from a lattice's values.

    Attributes:
        spec: the `LineSpec` for the values last seen.
        token: `signature_token` of ``spec``: programs compiled for it stay valid.
    """

    def __init__(self, spec: LineSpec, record: CompileRecord | None = None, index: dict | None = None,
                 values: np.ndarray | None = None):
        self.token = signature_token(spec)
        self.spec = _frozen(spec)
        self.refreshable = record is not None
        if record is None:  # a line compiled for one call only
            return
        self._index, self._steps, self._values = index, record.steps, values
        self.refreshable = _cells(self, spec, record, index, values)
        self._geometry = _offsets(index, record.geometry)
        self._geometry_vals = values[self._geometry]
        self._guards()
        dyn: dict = {}
        for key, slot in record.knob_dyn:
            dyn.setdefault(key, (*index[slot], False))
        for st in record.steps:
            for src, value, slot in st.dyn:
                if src[0] == "key":
                    dyn.setdefault(src[1], (*index[slot], isinstance(value, list)))
        self._dyn = list(dyn.items())
        self._setter_consts = [[index[k][0] for k in ks] for ks in record.setter_consts]

    def _guards(self) -> None:
        """Value offsets the kernel choices read, their values, and which step read each."""
        src, owner = [], []
        for j, st in enumerate(self._steps):
            for f in sorted(st.reads):
                o, n = self._index[st.inputs[f]]
                src += range(o, o + n)
                owner += [j] * n
        self._guard_src = np.asarray(src, dtype=np.int64)
        self._guard_owner = np.asarray(owner, dtype=np.int64)

    def refresh(self, values: np.ndarray) -> bool:
        """Bring ``spec`` to ``values``; False when a compile-time choice no longer holds.

        ``values``: `Lattice.numeric_values` of a lattice with this line's structure key
        (or the same key but for flags, which change no number); the caller checks that.
        """
        if values.shape != self._values.shape or not self.refreshable:
            return False
        if np.array_equal(values, self._values):
            return True
        if not np.array_equal(values[self._geometry], self._geometry_vals):
            return False  # s positions moved: a new line
        changed = values[self._guard_src] != self._values[self._guard_src]
        if changed.any() and not self._redecide(np.unique(self._guard_owner[changed]), values):
            return False
        table = self._base.copy()
        table[self._rows, self._cols] = values[self._src]
        spec = self.spec
        dyn = {k: [float(v) for v in values[o:o + n]] if is_list else float(values[o])
               for k, (o, n, is_list) in self._dyn}
        setters = spec.setters
        if any(self._setter_consts):
            setters = tuple(
                dataclasses.replace(s, consts=tuple((name, float(values[o]))
                                                    for (name, _), o in zip(s.consts, offs)))
                if offs else s for s, offs in zip(spec.setters, self._setter_consts))
        self.spec = _frozen(dataclasses.replace(spec, table=table, dynamic_init=dyn, setters=setters))
        self._values = values
        return True

    def _redecide(self, owners, values: np.ndarray) -> bool:
        """Make the kernel choices of steps ``owners`` again; True when none changes."""
        new_reads = []
        for j in owners:
            st = self._steps[int(j)]
            current = {f: _read(values, self._index[key], f in st.lists) for f, key in st.inputs.items()}
            (ks, derived), reads = st.choice.decide(current)
            if ks != st.kernel or derived != st.derived:
                return False
            new_reads.append((st, reads))
        for st, reads in new_reads:  # all or nothing: the guards hold for one set of values
            st.reads = reads
        self._guards()
        return True


def _read(values: np.ndarray, slot: tuple[int, int], is_list: bool):
    o, n = slot
    return [float(v) for v in values[o:o + n]] if is_list else float(values[o])


def _offsets(index: dict, keys) -> np.ndarray:
    return np.asarray([index[k][0] for k in keys], dtype=np.int64)


def _cells(line: CompiledLine, spec: LineSpec, record: CompileRecord, index: dict,
           values: np.ndarray) -> bool:
    """Set the gather (rows, cols, src) and constant base table of ``line``; False when the
    values do not reproduce the compiled table (the line is then recompiled each call)."""
    rows, cols, src = [], [], []
    base = np.array(spec.table)
    for r, st in enumerate(record.steps):
        for c, cell in enumerate(st.cells):
            if cell is None:  # a constant: an RF frequency from the harmonic number
                continue
            key, k = cell
            rows.append(r)
            cols.append(c)
            src.append(index[key][0] + k)
    line._rows = np.asarray(rows, dtype=np.int64)
    line._cols = np.asarray(cols, dtype=np.int64)
    line._src = np.asarray(src, dtype=np.int64)
    line._base = base
    return bool(np.array_equal(base[line._rows, line._cols], values[line._src]))


def _frozen(spec: LineSpec) -> LineSpec:
    for a in (spec.table, spec.kernel_index, spec.step_placement, spec.placement_step,
              spec.s_end, spec.monitors):
        if isinstance(a, np.ndarray):
            a.flags.writeable = False
    return spec


def compiled_line(lat: Lattice, ref: Reference, preset: Preset, *, specialise: bool) -> CompiledLine:
    """The `CompiledLine` of ``lat`` with its current values (compiled on first sight of its
    structure, refreshed afterwards)."""
    if not isinstance(lat, Lattice):
        raise TypeError(f"expected a jacc.Lattice, got {type(lat).__name__}")
    try:
        skey, values = lat.snapshot()  # syncs knob expressions first
    except (TypeError, ValueError):  # a value that is not a number yet (validated on compile)
        skey, values = None, None
    key = (skey, ref, preset_key(preset), bool(specialise))
    line = _LINES.get(key) if skey is not None else None
    if line is not None and values is not None and line.refresh(values):
        return line
    spec, record = compile_recorded(lat, ref, preset, specialise=specialise)
    if values is None:
        return CompiledLine(spec)
    line = CompiledLine(spec, record, lat.value_index(), values)
    _LINES.pop(key, None)
    while len(_LINES) >= _MAX_LINES:
        _LINES.pop(next(iter(_LINES)))
    _LINES[key] = line
    return line


def clear() -> None:
    """Forget every cached line (programs cached by the entry points stay)."""
    _LINES.clear()


__all__ = ["CompiledLine", "clear", "compiled_line", "default_preset", "preset_key", "signature_digest", "signature_token"]
