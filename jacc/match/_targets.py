"""Targets of a match: optics quantities, where they are read, and what they must equal.

Quantities use the Twiss names of DESIGN.md: summary values (``qx``, ``qy``, ``dqx``,
``dqy``, ``momentum_compaction``) need no position; columns (``betx``, ``alfx``, ``mux``,
``dx``, ``x``, ...) are read at a placement's exit (``at="qf:3"``, a definition placed once,
``"start"``, ``"end"`` or a placement index). A callable ``quantity(tw) -> scalar`` is also
accepted for anything else.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Callable, Mapping

import jax.numpy as jnp
import numpy as np

from jacc.containers import TWISS_COLUMNS, TWISS_MODE_COLUMNS, TWISS_SUMMARY
from jacc.lattice import Lattice

_OPS = ("==", "<", ">")


@dataclasses.dataclass(frozen=True)
class Target:
    """One matching condition.

    Attributes:
        quantity: a Twiss name (``"qx"``, ``"betx"``...) or a callable ``tw -> scalar``.
        value: the wanted value (units of the quantity), or the limit of an inequality.
        at: where a column is read (placement key ``"qf:3"``, a definition placed once,
            ``"start"``, ``"end"`` or a placement index); None for summary quantities.
        relative_to: read the column here too and target the difference (e.g. a phase
            advance ``mux`` between two elements).
        op: ``"=="`` (equality), ``"<"`` (stay below ``value``) or ``">"`` (stay above).
        weight: multiplies the residual (units: 1 / units of the quantity).
        tol: tolerance on ``|achieved - value|`` that counts as reached.
        label: a name for reports (default: built from the fields).
    """

    quantity: str | Callable
    value: float
    at: str | int | None = None
    relative_to: str | int | None = None
    op: str = "=="
    weight: float = 1.0
    tol: float = 1e-10
    label: str | None = None

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"Target {self.name}: op must be one of {_OPS}, got {self.op!r}")
        if not np.isfinite(self.value):
            raise ValueError(f"Target {self.name}: value must be finite, got {self.value!r}")
        if not self.weight > 0:
            raise ValueError(f"Target {self.name}: weight must be positive, got {self.weight!r}")

    @property
    def name(self) -> str:
        if self.label is not None:
            return self.label
        q = self.quantity if isinstance(self.quantity, str) else getattr(self.quantity, "__name__", "f")
        where = "" if self.at is None else f"@{self.at}"
        rel = "" if self.relative_to is None else f"-@{self.relative_to}"
        return f"{q}{where}{rel}"


def parse_targets(targets) -> list[Target]:
    """Normalise ``targets``: a list of `Target`, or a dict of short forms.

    Dict keys are ``"qx"`` or ``"betx@qf:3"``; values are numbers, ``("<", 20.0)`` for an
    inequality, or `Target` objects.
    """
    if isinstance(targets, Target):
        targets = [targets]
    out: list[Target] = []
    if isinstance(targets, Mapping):
        for key, val in targets.items():
            if isinstance(val, Target):
                out.append(val)
                continue
            quantity, _, at = str(key).partition("@")
            op = "=="
            if isinstance(val, tuple):
                if len(val) != 2:
                    raise ValueError(f"targets['{key}']: an inequality is written (op, value), got {val!r}")
                op, val = val
            try:
                value = float(val)
            except (TypeError, ValueError):
                raise TypeError(f"targets['{key}']: expected a number, (op, number) or a Target, "
                                f"got {val!r}") from None
            out.append(Target(quantity, value, at=at or None, op=op))
    elif isinstance(targets, (list, tuple)):
        for t in targets:
            if not isinstance(t, Target):
                raise TypeError(f"targets: a list must hold Target objects, got {t!r}")
            out.append(t)
    else:
        raise TypeError(f"targets: expected a dict or a list of Target, got {type(targets).__name__}")
    if not out:
        raise ValueError("targets: nothing to match")
    return out


def row_of(lat: Lattice, at) -> int:
    """Row of a Twiss table (start, then each placement exit) for position ``at``."""
    if isinstance(at, (int, np.integer)):
        if not -len(lat) <= at < len(lat):
            raise ValueError(f"placement index {at} out of range (lattice has {len(lat)} placements)")
        return int(at) % len(lat) + 1
    if at == "start":
        return 0
    if at == "end":
        return len(lat)
    if at in lat.definitions:
        idx = lat.placements_of(at)
        if len(idx) != 1:
            raise ValueError(f"'{at}' is placed {len(idx)} times; name one placement as "
                             f"'{at}:n' (n = 1..{len(idx)})")
        return idx[0] + 1
    try:
        p = lat[at]
    except KeyError:
        close = difflib.get_close_matches(str(at).split(":")[0], list(lat.definitions), n=3)
        hint = f" (did you mean {close}?)" if close else ""
        raise ValueError(f"target position '{at}' names no element{hint}; use a placement key "
                         f"'name:n', a definition placed once, 'start', 'end' or an index") from None
    return p.index + 1


@dataclasses.dataclass(frozen=True)
class ResolvedTargets:
    """Targets bound to a lattice: how to read each one from a Twiss pytree."""

    targets: tuple[Target, ...]
    readers: tuple[Callable, ...]

    @property
    def values(self) -> np.ndarray:
        return np.array([t.value for t in self.targets])

    @property
    def weights(self) -> np.ndarray:
        return np.array([t.weight for t in self.targets])

    def achieved(self, tw) -> jnp.ndarray:
        """Values of the quantities in ``tw``, shape (n_targets,)."""
        return jnp.stack([jnp.asarray(r(tw), dtype=jnp.float64).reshape(()) for r in self.readers])

    def residual(self, tw, values) -> jnp.ndarray:
        """Weighted residuals: ``w (achieved - value)`` for equalities; hinges for inequalities."""
        a = self.achieved(tw)
        d = a - values
        out = []
        for i, t in enumerate(self.targets):
            if t.op == "==":
                out.append(d[i])
            elif t.op == "<":
                out.append(jnp.maximum(d[i], 0.0))
            else:
                out.append(jnp.minimum(d[i], 0.0))
        return jnp.stack(out) * jnp.asarray(self.weights)

    def violations(self, achieved: np.ndarray) -> np.ndarray:
        """Unweighted distance of each achieved value from its target (0 if an inequality holds)."""
        d = np.asarray(achieved) - self.values
        ops = np.array([t.op for t in self.targets])
        return np.where(ops == "==", d, np.where(ops == "<", np.maximum(d, 0), np.minimum(d, 0)))


def resolve_targets(lat: Lattice, targets: list[Target]) -> ResolvedTargets:
    """Check every target against the lattice and build its reader."""
    readers = []
    for t in targets:
        q = t.quantity
        if callable(q):
            readers.append(q)
            continue
        if q in TWISS_SUMMARY:
            if t.at is not None:
                raise ValueError(f"target '{t.name}': {q} is a summary value, it takes no 'at'")
            readers.append(lambda tw, q=q: _summary(tw, q))
            continue
        if q not in TWISS_COLUMNS + TWISS_MODE_COLUMNS:
            close = difflib.get_close_matches(q, TWISS_SUMMARY + TWISS_COLUMNS, n=3)
            hint = f" (did you mean {close}?)" if close else ""
            raise ValueError(f"unknown target quantity '{q}'{hint}; valid: summary "
                             f"{list(TWISS_SUMMARY)}, columns {list(TWISS_COLUMNS + TWISS_MODE_COLUMNS)} "
                             "(read at an element: 'betx@name'), or a callable tw -> value")
        if t.at is None:
            raise ValueError(f"target '{t.name}': column '{q}' needs a position, e.g. "
                             f"Target('{q}', value, at='name:1') or '{q}@name:1'")
        row = row_of(lat, t.at)
        if t.relative_to is None:
            readers.append(lambda tw, q=q, row=row: _column(tw, q)[row])
        else:
            row0 = row_of(lat, t.relative_to)
            readers.append(lambda tw, q=q, row=row, row0=row0: _column(tw, q)[row] - _column(tw, q)[row0])
    return ResolvedTargets(tuple(targets), tuple(readers))


def _summary(tw, q):
    v = getattr(tw, q)
    if v is None:
        raise ValueError(f"the Twiss result has no '{q}' (e.g. chromaticity not computed by this "
                         "optics function)")
    return v


def _column(tw, q):
    v = getattr(tw, q)
    if v is None:
        raise ValueError(f"the Twiss result has no column '{q}'")
    return v
