"""Knobs of a match: which parameters vary, how they are flagged, how results go back.

A knob is one of
- an element definition and field (``"qf"`` with ``"k1"``): every placement of ``qf`` moves
  together (dynamic key ``"qf.k1"``);
- one placement and field (``"qf:3"`` with ``"k1"``): that magnet alone (key ``"qf:3.k1"``);
- a lattice knob (``"kq01"``, a MAD-X variable): every field whose expression reads it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Iterable, Mapping

from jacc.lattice import Lattice


@dataclasses.dataclass(frozen=True)
class Vary:
    """One varied parameter.

    Attributes:
        name: element definition (``"qf"``), placement (``"qf:3"``) or lattice knob (``"kq01"``).
        field: the element field (``"k1"``, ``"k2"``, ``"xangle"``...); None for a lattice knob.
        step: typical size of a change, in the field's units; the solver works in units of it
            (default: the magnitude of the starting value, or 1 when it is zero).
    """

    name: str
    field: str | None = None
    step: float | None = None

    @property
    def key(self) -> str:
        """The key of this parameter in the engine's ``dynamic`` dict."""
        return self.name if self.field is None else f"{self.name}.{self.field}"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Vary: name must be a non-empty string, got {self.name!r}")
        if self.step is not None and not self.step > 0:
            raise ValueError(f"Vary '{self.key}': step must be positive, got {self.step!r}")


def parse_knobs(knobs) -> list[Vary]:
    """Normalise the accepted spellings of ``knobs`` into a list of `Vary`.

    Accepted: ``{"qf": "k1", "kq01": None}``, ``{"qf": ["k1", "k1s"]}``, a list of
    ``"qf.k1"`` / ``"qf:3.k1"`` / ``"kq01"`` strings or `Vary` objects, or one of them alone.
    """
    if isinstance(knobs, (str, Vary)):
        knobs = [knobs]
    out: list[Vary] = []
    if isinstance(knobs, Mapping):
        for name, fields in knobs.items():
            if fields is None or fields == "value":
                out.append(Vary(str(name)))
            elif isinstance(fields, str):
                out.append(Vary(str(name), fields))
            elif isinstance(fields, Iterable):
                out += [Vary(str(name), str(f)) for f in fields]
            else:
                raise TypeError(f"knobs['{name}']: give a field name, a list of them, or None "
                                f"for a lattice knob; got {fields!r}")
    elif isinstance(knobs, Iterable):
        for k in knobs:
            if isinstance(k, Vary):
                out.append(k)
            elif isinstance(k, str):
                # "qf:3.k1" -> ("qf:3", "k1"); names may hold dots, the field never does
                m = re.fullmatch(r"(.+)\.([A-Za-z_][A-Za-z0-9_]*)", k)
                out.append(Vary(m.group(1), m.group(2)) if m else Vary(k))
            else:
                raise TypeError(f"knobs: expected strings or Vary objects, got {k!r}")
    else:
        raise TypeError(f"knobs: expected a dict, a list or a string, got {type(knobs).__name__}")
    if not out:
        raise ValueError("knobs: nothing to vary")
    keys = [v.key for v in out]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"knobs: {dup} given more than once")
    return out


def _candidates(lat: Lattice) -> str:
    defs = sorted(n for n, el in lat.definitions.items() if el.numeric_fields())
    knobs = sorted(lat.knobs)
    return (f"valid element definitions: {defs}; placements are 'name:n'; "
            f"lattice knobs: {knobs}")


def check_knobs(lat: Lattice, varies: list[Vary]) -> None:
    """Raise `ValueError` naming any knob the lattice does not have, listing the valid ones."""
    defs_varied = {v.name for v in varies if v.field is not None and ":" not in v.name}
    for v in varies:
        if v.field is None:
            if v.name not in lat.knobs:
                close = difflib.get_close_matches(v.name, list(lat.knobs) + list(lat.definitions), n=3)
                hint = f" (did you mean {close}?)" if close else ""
                extra = (f"; '{v.name}' is an element: give its field, e.g. {{'{v.name}': 'k1'}}"
                         if v.name in lat.definitions else "")
                raise ValueError(f"unknown lattice knob '{v.name}'{hint}{extra}; {_candidates(lat)}")
            continue
        try:
            el = lat[v.name]
        except KeyError:
            close = difflib.get_close_matches(v.name.split(":")[0], list(lat.definitions), n=3)
            hint = f" (did you mean {close}?)" if close else ""
            raise ValueError(f"unknown element '{v.name}'{hint}; {_candidates(lat)}") from None
        fields = el.numeric_fields()
        if v.field not in fields:
            raise ValueError(f"{el.element_name} '{v.name}' has no numeric field '{v.field}'; "
                             f"valid: {list(fields)}")
        if ":" in v.name and v.name.split(":")[0] in defs_varied:
            raise ValueError(f"knob '{v.key}': its definition '{v.name.split(':')[0]}' is varied "
                             "as a whole too; vary one or the other")


def flagged_copy(lat: Lattice, varies: list[Vary]) -> Lattice:
    """A copy of ``lat`` with every varied parameter flagged differentiable."""
    check_knobs(lat, varies)
    out = lat.copy()
    for v in varies:
        if v.field is None:
            out.knobs[v.name].diff = True
        elif ":" in v.name:
            p = out[v.name]
            # a placement's own flags replace its definition's: keep those too
            flags = list(p.overrides.get("diff_params", p.definition.diff_params))
            if v.field not in flags:
                p.diff_params = flags + [v.field]
        else:
            el = out.definitions[v.name]
            if v.field not in el.diff_params:
                el.diff_params = list(el.diff_params) + [v.field]
    return out


def current_values(lat: Lattice, varies: list[Vary]) -> list[float]:
    """The value each varied parameter has in ``lat``."""
    out = []
    for v in varies:
        if v.field is None:
            out.append(float(lat.knobs[v.name].value))
        else:
            out.append(float(getattr(lat[v.name], v.field)))
    return out


def apply_values(lat: Lattice, varies: list[Vary], values) -> Lattice:
    """A copy of ``lat`` with the varied parameters set to ``values`` (flags untouched).

    A definition field that an expression tied to a lattice knob (MAD-X ``k1 := kqf``)
    holds a plain number afterwards: its expression is removed, so that the matched value is
    what the lattice uses (vary the lattice knob instead to keep the link).
    """
    data = lat.model_dump()
    for v, val in zip(varies, values):
        if v.field is not None and ":" not in v.name:
            data["definitions"][v.name][v.field] = float(val)
            fields = data["expressions"].get(v.name, {})
            if v.field in fields:
                fields = {f: t for f, t in fields.items() if f != v.field}
                if fields:
                    data["expressions"][v.name] = fields
                else:
                    del data["expressions"][v.name]
    out = type(lat).model_validate(data)
    for v, val in zip(varies, values):
        if v.field is None:
            out.set_knob(v.name, float(val))
        elif ":" in v.name:
            setattr(out[v.name], v.field, float(val))
    return out
