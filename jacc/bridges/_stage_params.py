"""Stage parameters: names of knobs or element fields, and writing their values into a lattice.

A stage parameter is named as in JACC's engine (`jacc.TrackingEngine.make_model`'s
``dynamic`` keys): a knob of ``lat.knobs`` (``"kq01"``), a field of a definition, set for
every placement of it (``"qf.k1"``), or a field of one placement (``"qf:3.k1"``, MAD-X's
``name:n``, counted from 1). Only scalar fields (floats) can be stage parameters.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np

from jacc.lattice import Lattice

__all__ = ["ParamTarget", "StageParams"]


@dataclass(frozen=True)
class ParamTarget:
    """Where one parameter is written.

    Attributes:
        name: the parameter name as given.
        kind: ``"knob"``, ``"definition"`` (every placement) or ``"placement"`` (one).
        target: knob name, definition name or ``name:n``.
        field: element field (``"value"`` for a knob).
    """

    name: str
    kind: str
    target: str
    field: str


def _scalar_fields(el) -> list[str]:
    return [f for f in el.numeric_fields() if type(el).model_fields[f].annotation is float]


def _resolve(lat: Lattice, name: str) -> ParamTarget:
    """The `ParamTarget` of ``name``, or a ValueError naming what is wrong and the options."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"stage parameter names are non-empty strings, got {name!r}")
    if name in lat.knobs:
        return ParamTarget(name, "knob", name, "value")
    target, dot, field = name.rpartition(".")
    if not dot:
        close = difflib.get_close_matches(name, list(lat.knobs), n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(
            f"stage parameter {name!r} is not a knob of lattice '{lat.name}' (knobs: "
            f"{sorted(lat.knobs)}) nor an 'element.field' name{hint}")
    m = re.fullmatch(r"(.+):(\d+)", target)
    definition = m.group(1) if m else target
    if definition not in lat.definitions:
        close = difflib.get_close_matches(definition, list(lat.definitions), n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"stage parameter {name!r}: no element '{definition}' in lattice "
                         f"'{lat.name}'{hint}")
    el = lat.definitions[definition]
    valid = _scalar_fields(el)
    if field not in valid:
        raise ValueError(f"stage parameter {name!r}: {el.element_name} '{definition}' has no "
                         f"scalar field '{field}'; scalar fields: {valid}")
    if m:
        lat[target]  # a KeyError naming the number of placements if n is out of range
        return ParamTarget(name, "placement", target, field)
    return ParamTarget(name, "definition", definition, field)


class StageParams:
    """The parameters of a stage, resolved against a lattice once, written in many times.

    Args:
        lat: the lattice (the stage's own copy: values are written into it).
        names: parameter names, in the order of the stage's input vector.
    """

    def __init__(self, lat: Lattice, names):
        names = [names] if isinstance(names, str) else list(names)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"stage parameters are given more than once: {dup}")
        self.lat = lat
        self.targets = tuple(_resolve(lat, n) for n in names)
        self.names = tuple(t.name for t in self.targets)
        self.placements = self._placements()

    def _placements(self) -> tuple[int, ...]:
        """Placement indices whose element can change with the parameters."""
        lat, out = self.lat, set()
        for t in self.targets:
            if t.kind == "knob":
                for definition, _ in lat.knob_dependents(t.target):
                    out.update(lat.placements_of(definition))
            elif t.kind == "definition":
                out.update(lat.placements_of(t.target))
            else:
                out.add(lat[t.target].index)
        return tuple(sorted(out))

    def values(self) -> np.ndarray:
        """The parameters' values in the lattice now, ``(p,)``."""
        lat = self.lat
        out = []
        for t in self.targets:
            if t.kind == "knob":
                out.append(lat.knobs[t.target].value)
            elif t.kind == "definition":
                out.append(getattr(lat.definitions[t.target], t.field))
            else:
                out.append(getattr(lat[t.target], t.field))
        return np.asarray(out, dtype=np.float64)

    def apply(self, values) -> None:
        """Write ``values`` (p,) into the lattice: knobs first (their expressions are
        re-evaluated), then fields, so that a field parameter wins over its expression."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape[0] != len(self.targets):
            raise ValueError(f"stage takes {len(self.targets)} parameter values {list(self.names)}, "
                             f"got {values.shape[0]}")
        lat = self.lat
        for t, v in zip(self.targets, values):
            if t.kind == "knob":
                lat.set_knob(t.target, float(v))
        for t, v in zip(self.targets, values):
            if t.kind == "definition":
                setattr(lat.definitions[t.target], t.field, float(v))
            elif t.kind == "placement":
                setattr(lat[t.target], t.field, float(v))
