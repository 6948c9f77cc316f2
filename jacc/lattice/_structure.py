"""Cheap views of a `Lattice` for the engine's cache: a structural key and a flat value vector.

The engine compiles a lattice once per structure and re-reads only the numbers on later
calls. `structure_key` covers everything that decides the compiled program except numeric
values (placements, element types, flags, apertures' shapes, static options, list lengths,
overrides' fields, knob flags); `numeric_values` reads every numeric value into one array,
in an order that `value_index` names and that the structural key fixes. Neither validates
or copies an element, so both cost microseconds per definition.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Callable

import numpy as np

from .base import Aperture, Element

if TYPE_CHECKING:
    from .lattice import Lattice

# Fields that never reach the engine model, or that are handled on their own.
_OWN = ("element_name", "name", "extra", "diff_params", "aperture")


@dataclass(frozen=True)
class _Fields:
    """Per element class: numeric fields split into scalars and lists, and static options.

    ``get(element.__dict__)`` reads ``(*scalars, diff_params, aperture, *statics, *lists)``
    at once (from the instance dict: Pydantic keeps field values there).
    """

    scalars: tuple[str, ...]
    lists: tuple[str, ...]
    statics: tuple[str, ...]
    get: Callable[[dict], tuple]
    n: int  # number of scalars


_FIELDS: dict[type, _Fields] = {}


def fields_of(cls: type[Element]) -> _Fields:
    """The field split of element class ``cls`` (computed once per class)."""
    info = _FIELDS.get(cls)
    if info is None:
        numeric = cls.numeric_fields()
        lists = tuple(f for f in numeric if cls.model_fields[f].annotation == list[float])
        scalars = tuple(f for f in numeric if f not in lists)
        statics = tuple(f for f in cls.model_fields if f not in numeric and f not in _OWN)
        get = operator.itemgetter(*scalars, "diff_params", "aperture", *statics, *lists)
        info = _Fields(scalars, lists, statics, get, len(scalars))
        _FIELDS[cls] = info
    return info


def _aperture(value) -> Aperture | None:
    """An override's aperture (an `Aperture`, its dict, or None) as an `Aperture`."""
    if value is None or isinstance(value, Aperture):
        return value
    return Aperture.model_validate(value)


def _override_key(cls: type[Element], ov: dict) -> tuple:
    """The structural part of one placement's overrides: fields, flags, shapes, lengths."""
    info = fields_of(cls)
    out = []
    for f in sorted(ov):
        v = ov[f]
        if f in info.scalars:
            out.append((f, None))
        elif f in info.lists:
            out.append((f, len(v)))
        elif f == "diff_params":
            out.append((f, tuple(v)))
        elif f == "aperture":
            ap = _aperture(v)
            out.append((f, None if ap is None else ap.shape))
        elif f != "extra":
            out.append((f, v))
    return tuple(out)


def structure_key(lat: "Lattice") -> tuple:
    """Hashable key of everything in ``lat`` that decides its compiled program but numbers."""
    return snapshot(lat)[0]


def numeric_values(lat: "Lattice") -> np.ndarray:
    """Every numeric value of ``lat`` as one float64 array, ordered as `value_index` says.

    Definitions (scalar fields, list fields, aperture a and b), then each placement's
    overridden numbers, then knob values, then ``s0``.
    """
    return snapshot(lat)[1]


def snapshot(lat: "Lattice") -> tuple[tuple, np.ndarray]:
    """`structure_key` and `numeric_values` in one pass (knob expressions must be synced).

    This runs on every call of the public entry points: one read of each definition's
    fields, and per-definition key entries only for the few with flags, an aperture, static
    options or list fields.
    """
    defs = lat.definitions
    parts, special = [], []
    for j, d in enumerate(defs.values()):
        info = _FIELDS.get(type(d)) or fields_of(type(d))
        t = info.get(d.__dict__)
        n = info.n
        parts.append(t[:n])
        if t[n] or t[n + 1] is not None or len(t) > n + 2:
            ap = t[n + 1]
            lists = t[n + 2 + len(info.statics):]
            special.append((j, tuple(t[n]), None if ap is None else ap.shape,
                            t[n + 2:n + 2 + len(info.statics)], tuple(map(len, lists))))
            parts.extend(lists)
            if ap is not None:
                parts.append((ap.a, ap.b))
    overrides = []
    for i, ov in sorted(lat.overrides.items()):
        key, values = _override(type(defs[lat.line[i]]), ov)
        overrides.append((i, key))
        parts.extend(values)
    knobs = lat.knobs.values()
    parts.append(list(map(_VALUE, knobs)))
    parts.append((lat.s0,))
    diffs = tuple(map(_DIFF, knobs))
    # expressions reach the program only through differentiable knobs
    exprs = tuple((k, e.text) for k, e in lat._parsed.items()) if True in diffs else ()
    key = (tuple(lat.line), tuple(defs), tuple(map(type, defs.values())), tuple(special),
           tuple(overrides), tuple(lat.knobs), diffs, exprs)
    return key, np.fromiter(chain.from_iterable(parts), dtype=np.float64)


_VALUE, _DIFF = operator.attrgetter("value"), operator.attrgetter("diff")
_OVERRIDES: dict = {}  # (class, sorted items) -> (structural key, value parts)


def _override(cls: type[Element], ov: dict) -> tuple[tuple, list]:
    """`_override_key` and `_override_values` of one placement's overrides, memoised when
    they hold only plain numbers and strings (IOTA's dipole edges: ``{"side": "exit"}``)."""
    items = tuple(sorted(ov.items()))
    plain = all(type(v) in (float, int, str, bool) for _, v in items)
    hit = _OVERRIDES.get((cls, items)) if plain else None
    if hit is None:
        hit = (_override_key(cls, ov), _override_values(cls, ov))
        if plain and len(_OVERRIDES) < 4096:
            _OVERRIDES[(cls, items)] = hit
    return hit


def _override_values(cls: type[Element], ov: dict) -> list:
    info = fields_of(cls)
    out = []
    for f in sorted(ov):
        if f in info.scalars:
            out.append((ov[f],))
        elif f in info.lists:
            out.append(ov[f])
        elif f == "aperture":
            ap = _aperture(ov[f])
            if ap is not None:
                out.append((ap.a, ap.b))
    return out


def value_index(lat: "Lattice") -> dict[tuple, tuple[int, int]]:
    """Where each value sits in `numeric_values`: key -> ``(offset, size)``.

    Keys: ``("def", name, field)``, ``("def", name, "aperture")`` (a, b),
    ``("pl", index, field)`` and ``("pl", index, "aperture")`` for a placement's overrides,
    ``("knob", name)``, ``("s0",)``.
    """
    out: dict[tuple, tuple[int, int]] = {}
    pos = 0

    def put(key, size):
        nonlocal pos
        out[key] = (pos, size)
        pos += size

    for name, d in lat.definitions.items():
        info = fields_of(type(d))
        for f in info.scalars:
            put(("def", name, f), 1)
        for f in info.lists:
            put(("def", name, f), len(getattr(d, f)))
        if d.aperture is not None:
            put(("def", name, "aperture"), 2)
    for i, ov in sorted(lat.overrides.items()):
        info = fields_of(type(lat.definitions[lat.line[i]]))
        for f in sorted(ov):
            if f in info.scalars:
                put(("pl", i, f), 1)
            elif f in info.lists:
                put(("pl", i, f), len(ov[f]))
            elif f == "aperture" and _aperture(ov[f]) is not None:
                put(("pl", i, f), 2)
    for k in lat.knobs:
        put(("knob", k), 1)
    put(("s0",), 1)
    return out
