"""`Lattice`: element definitions, their placements along s, and the knobs that drive them.

An element *definition* (``lat["qf"]``) may be placed many times; ``lat.elements`` is the flat
list of *placements*, each with its own ``s_start``/``s_mid``/``s_end``. ``lat["qf:3"]`` is the
third placement of ``qf`` (1-based, MAD-X's ``name:n``); setting a field on it overrides that
placement alone. Knobs are MAD-X variables that fields depend on through expressions.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from typing import Any, Iterator, Sequence

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from .base import Element, LatticeError
from .elements import AnyElement, element_from_dict
from .expressions import Expression, ExpressionError
from ._structure import numeric_values, snapshot, structure_key, value_index
from .placement import PlacedElement


class Knob(BaseModel):
    """A named variable that element fields depend on through expressions (MAD-X variable)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

    value: float = Field(description="current value (units of the fields it drives)")
    diff: bool = Field(default=False, description="flagged differentiable in the engine model")
    description: str = Field(default="", description="free text")


class Line:
    """A (possibly nested, possibly repeated) sequence of elements used to build a lattice.

    Items are ``Element`` definitions, names of definitions given earlier, or other ``Line``s.
    ``repeat`` places the whole line that many times.
    """

    def __init__(self, name: str, items: Sequence[Element | "Line" | str], repeat: int = 1):
        if int(repeat) != repeat or repeat < 1:
            raise ValueError(f"line '{name}': repeat must be a positive integer, got {repeat!r}")
        self.name, self.items, self.repeat = name, list(items), int(repeat)

    def flatten(self, definitions: dict[str, Element]) -> list[str]:
        out: list[str] = []
        for item in self.items:
            if isinstance(item, Line):
                out += item.flatten(definitions)
            elif isinstance(item, Element):
                known = definitions.setdefault(item.name, item)
                if known is not item and known != item:
                    raise LatticeError(
                        f"line '{self.name}': two different definitions named '{item.name}'")
                out.append(item.name)
            elif isinstance(item, str):
                if item not in definitions:
                    raise LatticeError(f"line '{self.name}': '{item}' names no element defined before it")
                out.append(item)
            else:
                raise TypeError(f"line '{self.name}': items are Elements, Lines or names, got {item!r}")
        return out * self.repeat


class Lattice(BaseModel):
    """An accelerator lattice: definitions, placements (``line``), knobs and expressions.

    Attributes:
        name: lattice name.
        definitions: element definitions by name.
        line: the definition name of every placement, in order along s.
        overrides: per-placement field values (placement index -> {field: value}).
        knobs: named variables (MAD-X variables) by name.
        expressions: definition name -> {field: expression in knobs}.
        s0: s of the lattice start [m].
        extra: per-code attributes kept as is (e.g. the MAD-X beam command).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

    name: str = Field(default="lattice", description="lattice name")
    definitions: dict[str, AnyElement] = Field(default_factory=dict)
    line: list[str] = Field(default_factory=list)
    overrides: dict[int, dict[str, Any]] = Field(default_factory=dict)
    knobs: dict[str, Knob] = Field(default_factory=dict)
    expressions: dict[str, dict[str, str]] = Field(default_factory=dict)
    s0: float = Field(default=0.0, description="s at the lattice start [m]")
    extra: dict[str, Any] = Field(default_factory=dict)

    _applied: dict[str, float] | None = PrivateAttr(default=None)
    _parsed: dict[tuple[str, str], Expression] = PrivateAttr(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @model_validator(mode="after")
    def _check_lattice(self):
        for key, el in self.definitions.items():
            if el.name != key:
                raise LatticeError(f"definition key '{key}' holds an element named '{el.name}'")
        for i, name in enumerate(self.line):
            if name not in self.definitions:
                raise LatticeError(
                    f"lattice '{self.name}': placement {i} names unknown element '{name}'"
                    f"{_suggest(name, self.definitions)}")
        for i, fields in self.overrides.items():
            if not 0 <= i < len(self.line):
                raise LatticeError(f"lattice '{self.name}': override for placement {i} out of range")
            try:
                self.definitions[self.line[i]].with_updates(**fields)
            except ValidationError as err:
                raise LatticeError(f"placement {i} ('{self.line[i]}'): {err}") from None
        for dname, fields in self.expressions.items():
            el = self.definitions.get(dname)
            if el is None:
                raise LatticeError(f"expressions given for unknown element '{dname}'")
            for fname, text in fields.items():
                if fname not in el.numeric_fields():
                    raise LatticeError(
                        f"{el.element_name} '{dname}': expression for '{fname}', which is not a "
                        f"numeric field; valid: {list(el.numeric_fields())}")
                try:
                    expr = Expression.parse(text)
                except ExpressionError as err:
                    raise LatticeError(f"{el.element_name} '{dname}', field '{fname}': {err}") from None
                missing = [n for n in expr.names if n not in self.knobs]
                if missing:
                    raise LatticeError(
                        f"{el.element_name} '{dname}', field '{fname}': expression {text!r} reads "
                        f"unknown knobs {missing}")
                self._parsed[(dname, fname)] = expr
        self._applied = None
        self._sync()
        return self

    @classmethod
    def from_line(cls, line: Line, *, knobs: dict[str, float] | None = None,
                  expressions: dict[str, dict[str, str]] | None = None, **kwargs) -> "Lattice":
        """Build from a (nested, repeated) ``Line`` of element definitions."""
        definitions: dict[str, Element] = {}
        names = line.flatten(definitions)
        return cls(name=kwargs.pop("name", line.name), definitions=definitions, line=names,
                   knobs={k: Knob(value=v) for k, v in (knobs or {}).items()},
                   expressions=expressions or {}, **kwargs)

    @classmethod
    def from_elements(cls, elements: Sequence[Element], name: str = "lattice", **kwargs) -> "Lattice":
        """Build from a flat list of definitions (an element object may appear several times)."""
        return cls.from_line(Line(name, list(elements)), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> "Lattice":
        """Rebuild a lattice from :meth:`to_json` output (lossless)."""
        return cls.model_validate_json(text)

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to JSON; :meth:`from_json` restores an equal lattice."""
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_madx(cls, path, sequence: str | None = None, **kwargs) -> "Lattice":
        """Import a MAD-X file (through cpymad); see :func:`jacc.lattice.io_madx.read_madx`."""
        from .io_madx import read_madx

        return read_madx(path, sequence=sequence, **kwargs)

    def to_madx(self) -> str:
        """MAD-X text (element definitions, knobs, a sequence) that MAD-X reads back."""
        from .io_madx import write_madx

        return write_madx(self)

    @classmethod
    def from_pals(cls, obj) -> "Lattice":
        """From PALS: a document dict, a ``pals.PALSroot`` or a ``.pals.yaml``/``.pals.json`` path
        (:func:`jacc.lattice.io_pals.from_pals`)."""
        from .io_pals import from_pals

        return from_pals(obj)

    def to_pals(self) -> dict:
        """The PALS document (a dict that pals-schema validates; :func:`jacc.lattice.io_pals.to_pals`)."""
        from .io_pals import to_pals

        return to_pals(self)

    @classmethod
    def from_bmad(cls, path) -> "Lattice":
        """Import a Bmad lattice file (the line named by ``use``; :mod:`jacc.lattice.io_bmad`)."""
        from .io_bmad import read_bmad

        return read_bmad(path)

    def to_bmad(self) -> str:
        """Bmad lattice text (:func:`jacc.lattice.io_bmad.write_bmad`)."""
        from .io_bmad import write_bmad

        return write_bmad(self)

    @classmethod
    def from_elegant(cls, path, line: str | None = None) -> "Lattice":
        """Import an elegant ``.lte`` file (:func:`jacc.lattice.io_elegant.read_elegant`)."""
        from .io_elegant import read_elegant

        return read_elegant(path, line=line)

    def to_elegant(self) -> str:
        """elegant ``.lte`` text (:func:`jacc.lattice.io_elegant.write_elegant`)."""
        from .io_elegant import write_elegant

        return write_elegant(self)

    def survey(self, **initial):
        """Floor coordinates as MAD-X SURVEY (:func:`jacc.lattice.survey.survey`)."""
        from .survey import survey

        return survey(self, **initial)

    # MAD-X SEQEDIT operations, each returning a new lattice (:mod:`jacc.lattice.seqedit`).
    def cycle(self, start: str) -> "Lattice":
        """The ring started at placement ``start`` (``name`` or ``name:n``), as SEQEDIT CYCLE."""
        from .seqedit import cycle

        return cycle(self, start)

    def install(self, element: Element, at: float, from_: str | None = None) -> "Lattice":
        """``element`` installed with its centre at ``at`` [m] (from ``from_``), as SEQEDIT INSTALL."""
        from .seqedit import install

        return install(self, element, at, from_=from_)

    def remove(self, pattern: str) -> "Lattice":
        """Placements whose name (or ``name:n``) matches ``pattern`` removed (drift left), as SEQEDIT REMOVE."""
        from .seqedit import remove

        return remove(self, pattern)

    def replace(self, pattern: str, element: Element) -> "Lattice":
        """Placements matching ``pattern`` replaced by ``element`` centred at the same s (SEQEDIT REPLACE)."""
        from .seqedit import replace

        return replace(self, pattern, element)

    def reflect(self) -> "Lattice":
        """The lattice in reverse order, as SEQEDIT REFLECT."""
        from .seqedit import reflect

        return reflect(self)

    def copy(self) -> "Lattice":
        """An independent deep copy."""
        return type(self).model_validate(self.model_dump())

    def __eq__(self, other) -> bool:
        return isinstance(other, Lattice) and self.model_dump() == other.model_dump()

    # ------------------------------------------------------------------ knobs
    def _sync(self) -> None:
        """Re-evaluate expressions when knob values changed since the last evaluation."""
        values = {k: kn.value for k, kn in self.knobs.items()}
        if values == self._applied:
            return
        for (dname, fname), expr in self._parsed.items():
            el = self.definitions[dname]
            val = float(expr.evaluate(values))
            if getattr(el, fname) != val:
                setattr(el, fname, val)
        self._applied = values

    def set_knob(self, name: str, value: float) -> None:
        """Set knob ``name`` and update every field that depends on it."""
        if name not in self.knobs:
            raise KeyError(f"unknown knob '{name}'{_suggest(name, self.knobs)}")
        self.knobs[name].value = value
        self._sync()

    def knob_dependents(self, name: str) -> list[tuple[str, str]]:
        """``(definition, field)`` pairs whose expression reads knob ``name``."""
        return [key for key, e in self._parsed.items() if name in e.names]

    def expression(self, definition: str, field: str) -> Expression | None:
        """The parsed expression tying ``definition.field`` to knobs, if any."""
        return self._parsed.get((definition, field))

    # ------------------------------------------------------------------ engine cache
    def structure_key(self) -> tuple:
        """Hashable key of everything that decides the compiled program except numbers.

        Placements, element types, flags (``diff_params``, knob ``diff``), aperture shapes,
        static options (a DipoleEdge's ``side``, ``harmon``), list lengths and overridden
        fields. Cheap (no compilation): the engine looks its compiled programs up with it
        and re-reads the numbers with `numeric_values`.
        """
        self._sync()
        return structure_key(self)

    def numeric_values(self):
        """Every numeric value (fields, overrides, knobs, ``s0``) as one float64 array.

        Its layout (`value_index`) is fixed by `structure_key`.
        """
        self._sync()
        return numeric_values(self)

    def snapshot(self) -> tuple:
        """``(structure_key(), numeric_values())`` in one pass over the definitions."""
        self._sync()
        return snapshot(self)

    def value_index(self) -> dict[tuple, tuple[int, int]]:
        """``key -> (offset, size)`` of each value in `numeric_values` (see
        `jacc.lattice._structure.value_index` for the keys)."""
        self._sync()
        return value_index(self)

    # ------------------------------------------------------------------ access
    @property
    def elements(self) -> list[PlacedElement]:
        """Every placement along s, in order (views: setting a field overrides that placement)."""
        self._sync()
        out, s, seen = [], self.s0, Counter()
        for i, name in enumerate(self.line):
            seen[name] += 1
            view = PlacedElement(self, i, seen[name], s)
            s = view.s_end
            out.append(view)
        return out

    def __iter__(self) -> Iterator[PlacedElement]:  # type: ignore[override]
        return iter(self.elements)

    def __len__(self) -> int:
        return len(self.line)

    @property
    def length(self) -> float:
        """Path length of the reference orbit through the lattice [m]."""
        self._sync()
        return sum(self.element_at(i).path_length for i in range(len(self.line)))

    def element_at(self, index: int) -> Element:
        """The element in force at placement ``index`` (definition with its overrides)."""
        el = self.definitions[self.line[index]]
        ov = self.overrides.get(index)
        return el.with_updates(**ov) if ov else el

    def placements_of(self, name: str) -> list[int]:
        """Placement indices of definition ``name``."""
        return [i for i, n in enumerate(self.line) if n == name]

    def __getitem__(self, key: str | int):
        self._sync()
        if isinstance(key, int):
            return self.elements[key]
        if key in self.definitions:
            return self.definitions[key]
        m = re.fullmatch(r"(.+):(\d+)", key)
        if m and m.group(1) in self.definitions:
            idx = self.placements_of(m.group(1))
            n = int(m.group(2))
            if not 1 <= n <= len(idx):
                raise KeyError(f"'{key}': element '{m.group(1)}' is placed {len(idx)} times "
                               f"(placements are numbered from 1)")
            return self.elements[idx[n - 1]]
        raise KeyError(f"no element '{key}' in lattice '{self.name}'{_suggest(key, self.definitions)}")

    def __contains__(self, key) -> bool:
        try:
            self[key]
            return True
        except KeyError:
            return False

    def flagged(self) -> list[tuple[str, str]]:
        """Differentiable parameters: ``(target, field)``; target is a definition, ``name:n`` or a knob."""
        out = []
        for dname, el in self.definitions.items():
            out += [(dname, f) for f in el.diff_params]
        for i, ov in sorted(self.overrides.items()):
            if "diff_params" in ov:
                occ = self.placements_of(self.line[i]).index(i) + 1
                out += [(f"{self.line[i]}:{occ}", f) for f in ov["diff_params"]]
        out += [(k, "value") for k, kn in self.knobs.items() if kn.diff]
        return out

    def count_by_type(self) -> dict[str, int]:
        """Number of placements per element type."""
        return dict(Counter(self.definitions[n].element_name for n in self.line))

    def find(self, pattern: str) -> list[PlacedElement]:
        """Placements whose name matches the regular expression ``pattern`` (full match)."""
        rx = re.compile(pattern)
        return [p for p in self.elements if rx.fullmatch(p.name)]

    def __str__(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        return (f"Lattice(name={self.name!r}, placements={len(self.line)}, "
                f"definitions={len(self.definitions)}, length={self.length:.6f} m, knobs={len(self.knobs)})")


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=3)
    return f"; did you mean {close}?" if close else ""


__all__ = ["Knob", "Lattice", "Line", "element_from_dict"]
