"""The lattice of a model: loaded from its file (once per file), cut to a section, with
knobs set and the model's parameters flagged differentiable."""

from __future__ import annotations

import pathlib

import jacc
from jacc.lattice import Lattice

from ._config import LatticeConfig, resolve_path

__all__ = ["load_lattice", "section", "flag_params"]

_LOADED: dict = {}


def _read(path: pathlib.Path, sequence: str | None) -> Lattice:
    """The lattice in ``path``, read once per file version (a copy each time)."""
    if not path.is_file():
        raise FileNotFoundError(f"lattice file not found: {path}")
    key = (str(path.resolve()), path.stat().st_mtime_ns, sequence)
    lat = _LOADED.get(key)
    if lat is None:
        if path.suffix.lower() == ".json":
            lat = Lattice.from_json(path.read_text())
        else:
            lat = Lattice.from_madx(path, sequence=sequence)
        _LOADED[key] = lat
    return lat.copy()


def load_lattice(cfg: LatticeConfig, base: pathlib.Path | None, where: str):
    """``(section lattice or None, reference particle)`` described by ``cfg``.

    ``where`` names the model in errors. The lattice is a fresh copy: flags and knobs set
    on it touch no other model.
    """
    if cfg.file is None:
        return None, cfg.reference_particle
    lat = _read(resolve_path(cfg.file, base), cfg.sequence)
    rp = cfg.reference_particle
    if rp is None:
        try:
            rp = jacc.lattices.reference_from_beam(lat)
        except ValueError as err:
            raise ValueError(f"{where}: {err}; set config_lattice.reference_particle") from None
    for name, value in cfg.knobs.items():
        if name not in lat.knobs:
            raise ValueError(f"{where}: config_lattice.knobs names unknown knob {name!r}; "
                             f"knobs: {sorted(lat.knobs)}")
        lat.set_knob(name, value)
    if cfg.start is not None or cfg.end is not None:
        lat = section(lat, cfg.start, cfg.end, where)
    return lat, rp


def _index(lat: Lattice, which, where: str, what: str) -> int:
    if isinstance(which, int):
        if not -len(lat) <= which < len(lat):
            raise ValueError(f"{where}: config_lattice.{what} = {which} is out of range (0..{len(lat) - 1})")
        return which % len(lat)
    try:
        item = lat[which]
    except KeyError as err:
        raise ValueError(f"{where}: config_lattice.{what}: {err.args[0]}") from None
    return item.index if hasattr(item, "index") else lat.placements_of(which)[0]


def section(lat: Lattice, start, end, where: str = "section") -> Lattice:
    """Placements ``start`` to ``end`` (inclusive) of ``lat`` as a lattice of their own.

    Definitions, knobs, expressions and per-placement overrides come along; ``s0`` is the
    section's start. Placement numbering (``name:n``) is the section's own.
    """
    i0 = 0 if start is None else _index(lat, start, where, "start")
    i1 = len(lat) - 1 if end is None else _index(lat, end, where, "end")
    if i1 < i0:
        raise ValueError(f"{where}: config_lattice.end ({end!r}) comes before start ({start!r})")
    line = lat.line[i0:i1 + 1]
    used = set(line)
    return Lattice(
        name=f"{lat.name}[{line[0]}..{line[-1]}]",
        definitions={k: v for k, v in lat.definitions.items() if k in used},
        line=line,
        overrides={i - i0: dict(ov) for i, ov in lat.overrides.items() if i0 <= i <= i1},
        knobs={k: kn.model_copy() for k, kn in lat.knobs.items()},
        expressions={k: dict(v) for k, v in lat.expressions.items() if k in used},
        s0=lat.elements[i0].s_start,
        extra=dict(lat.extra),
    )


def flag_params(lat: Lattice, params, where: str) -> None:
    """Flag each of ``params`` (knob names or ``element.field``) differentiable in ``lat``."""
    for p in params:
        if p in lat.knobs:
            lat.knobs[p].diff = True
            continue
        target, _, field = p.rpartition(".")
        if not target:
            raise ValueError(f"{where}: parameter {p!r} is neither a knob ({sorted(lat.knobs)}) "
                             "nor 'element.field'")
        try:
            el = lat[target]
        except KeyError as err:
            raise ValueError(f"{where}: parameter {p!r}: {err.args[0]}") from None
        definition = el.definition if hasattr(el, "definition") else el
        if field not in definition.numeric_fields():
            raise ValueError(f"{where}: parameter {p!r}: {target} has no numeric field {field!r}")
        el.diff_params = sorted(set(el.diff_params) | {field})
