"""`match`: vary knobs until optics targets are reached, by gradient-based solvers.

The residual is a pure function of the knob values: the knobs are written into the engine's
``dynamic`` dict and the optics come from ``engine.make_twiss_func`` (closed orbit, Twiss,
tunes and chromaticity, all differentiable), so Jacobians are exact (forward mode), not
finite differences.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jacc.lattice import Lattice

from ._knobs import Vary, apply_values, current_values, flagged_copy, parse_knobs
from ._solve import SolveResult, solve
from ._targets import ResolvedTargets, Target, parse_targets, resolve_targets


@dataclasses.dataclass(frozen=True)
class MatchOptions:
    """Options of a match.

    Attributes:
        max_steps: step limit of the solver.
        progress: show a progress bar with the loss.
        twiss: keyword options of ``engine.make_twiss_func`` (e.g. the closed-orbit options).
        model: physics preset of the engine (default `jacc.Xsuite()`).
    """

    max_steps: int = 200
    progress: bool = True
    twiss: dict = dataclasses.field(default_factory=dict)
    model: Any = None

    def __post_init__(self):
        if int(self.max_steps) < 1:
            raise ValueError(f"MatchOptions: max_steps must be >= 1, got {self.max_steps}")


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """Outcome of `match`.

    Attributes:
        lattice: a copy of the input lattice with the knobs set to the solution.
        knobs: solution, ``{key: value}`` (keys as in the engine's ``dynamic``: ``"qf.k1"``).
        knobs_initial: starting values.
        targets: the targets, in order.
        achieved: value of each target quantity at the solution.
        achieved_initial: the same at the start.
        residuals: ``achieved - value`` (0 for a satisfied inequality), unweighted.
        converged: every target is within its ``tol`` at the solution.
        iterations: solver steps.
        message: the solver's status when it stopped on something other than its tolerance
            (a step limit, a failure); "" otherwise.
        history: loss (0.5 sum of weighted squared residuals) per step.
        time_s: wall time of the solve [s].
    """

    lattice: Lattice
    knobs: dict[str, float]
    knobs_initial: dict[str, float]
    targets: tuple[Target, ...]
    achieved: np.ndarray
    achieved_initial: np.ndarray
    residuals: np.ndarray
    converged: bool
    iterations: int
    message: str
    history: np.ndarray
    time_s: float

    @property
    def max_residual(self) -> float:
        """Largest unweighted target violation."""
        return float(np.max(np.abs(self.residuals)))

    def __str__(self) -> str:
        lines = [f"match: {'converged' if self.converged else 'NOT converged'} in "
                 f"{self.iterations} steps, {self.time_s:.3f} s, max |residual| {self.max_residual:.3e}"]
        if self.message:
            lines.append(f"  solver: {self.message}")
        w = max(len(t.name) for t in self.targets)
        lines.append(f"  {'target'.ljust(w)}  op  {'value':>14}  {'start':>14}  {'achieved':>14}  residual")
        for t, a0, a, r in zip(self.targets, self.achieved_initial, self.achieved, self.residuals):
            lines.append(f"  {t.name.ljust(w)}  {t.op:<2}  {t.value:14.8g}  {a0:14.8g}  {a:14.8g}  {r:.2e}")
        w = max(len(k) for k in self.knobs)
        lines.append(f"  {'knob'.ljust(w)}  {'start':>16}  {'solution':>16}")
        for k, v in self.knobs.items():
            lines.append(f"  {k.ljust(w)}  {self.knobs_initial[k]:16.10g}  {v:16.10g}")
        return "\n".join(lines)


class Matcher:
    """A compiled matching problem; `solve` may be called again (new target values, new start)
    without recompiling.

    Args:
        lat: the lattice (not modified).
        rp: reference particle.
        knobs: what varies (see `jacc.match.parse_knobs`): ``{"qf": "k1", "qd": "k1"}``,
            ``["kq01", "kq02"]``, ``["qf:3.k1"]`` or `Vary` objects.
        targets: what to reach (see `jacc.match.parse_targets`): ``{"qx": 4.3, "qy": 2.6}``,
            ``{"betx@ip": 5.0, "bety@qf:2": ("<", 30.0)}`` or `Target` objects.
        solver: an optimistix solver (default Levenberg-Marquardt) or an optax transform.
        options: `MatchOptions`.
    """

    def __init__(self, lat: Lattice, rp, knobs, targets, *, solver=None,
                 options: MatchOptions | None = None):
        from jacc.engine import TrackingEngine
        from jacc.engine.cache import compiled_line

        if not isinstance(lat, Lattice):
            raise TypeError(f"match: lat must be a jacc.Lattice, got {type(lat).__name__}")
        self.options = MatchOptions() if options is None else options
        self.varies: list[Vary] = parse_knobs(knobs)
        self.targets: ResolvedTargets = resolve_targets(lat, parse_targets(targets))
        self.solver = solver
        flagged = flagged_copy(lat, self.varies)
        engine = TrackingEngine(flagged, rp, self.options.model)
        self._structure = lat.structure_key()
        self._line = compiled_line(flagged, rp.reference(), engine.model, specialise=engine.specialise)
        spec = self._line.spec
        self.engine = engine
        twiss_kw = dict(self.options.twiss)
        if "options" not in twiss_kw and not any(
                t.quantity in ("dqx", "dqy") or callable(t.quantity) for t in self.targets.targets):
            from jacc.optics import TwissOptions

            # no chromatic target: skip the second-order pass (about half the work)
            twiss_kw["options"] = TwissOptions(chrom=False)
        self._twiss = engine.make_twiss_func(spec, table_arg=True, **twiss_kw)
        self.keys = [v.key for v in self.varies]
        self._take_values(lat, spec)
        self._cache: dict = {}

    def _take_values(self, lat: Lattice, spec) -> None:
        """Start values, knob scales and the table of everything not varied, from ``lat``."""
        self.lattice, self.spec = lat, spec
        self.table = spec.table
        self.dynamic = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in spec.dynamic_init.items()}
        self.x0 = np.array(current_values(lat, self.varies))
        self.scale = np.array([v.step if v.step is not None else (abs(x) if x != 0 else 1.0)
                               for v, x in zip(self.varies, self.x0)])

    def rebind(self, lat: Lattice) -> bool:
        """Take the values of ``lat``, a lattice of the same structure as the one this problem
        was built for, keeping the compiled program; False when ``lat`` needs a new one."""
        try:
            structure, values = lat.snapshot()  # the values are the flagged copy's too
        except (TypeError, ValueError):
            return False
        if structure != self._structure or not self._line.refresh(values):
            return False
        self._take_values(lat, self._line.spec)
        return True

    def _data(self):
        """What the compiled solve reads besides the target values (changing it does not recompile)."""
        rest = {k: v for k, v in self.dynamic.items() if k not in self.keys}
        return (jnp.asarray(self.table), jnp.asarray(self.x0), jnp.asarray(self.scale), rest)

    def dynamic_at(self, x, rest=None) -> dict:
        """The engine's ``dynamic`` dict with the knobs set to ``x`` (shape (n_knobs,))."""
        d = dict(self.dynamic if rest is None else rest)
        for i, k in enumerate(self.keys):
            d[k] = x[i]
        return d

    @property
    def twiss_fn(self):
        """Pure ``g(dynamic) -> Twiss`` of the lattice this problem holds."""
        return lambda dynamic: self._twiss(self.table, dynamic)

    def twiss(self, x):
        """Optics with the knobs at ``x`` (pure, differentiable)."""
        return self._twiss(self.table, self.dynamic_at(x))

    def residual(self, y, args):
        """Weighted target residuals for solver variables ``y`` (knob changes in steps);
        ``args``: ``(target values, data)`` (see `_data`)."""
        values, (table, x0, scale, rest) = args
        tw = self._twiss(table, self.dynamic_at(x0 + y * scale, rest))
        return self.targets.residual(tw, values)

    def _achieved(self, y, args):
        """Target quantities at solver variables ``y`` (unweighted)."""
        _, (table, x0, scale, rest) = args
        return self.targets.achieved(self._twiss(table, self.dynamic_at(x0 + y * scale, rest)))

    def solve(self, values=None, x0=None) -> MatchResult:
        """Run the solver.

        Args:
            values: target values (default: those of the targets), shape (n_targets,).
            x0: starting knob values (default: the lattice's), shape (n_knobs,).
        """
        values = self.targets.values if values is None else np.asarray(values, dtype=float)
        if values.shape != self.targets.values.shape:
            raise ValueError(f"values: expected shape {self.targets.values.shape}, got {values.shape}")
        start = self.x0 if x0 is None else np.asarray(x0, dtype=float)
        y0 = (start - self.x0) / self.scale
        res: SolveResult = solve(self.residual, y0, (jnp.asarray(values), self._data()), solver=self.solver,
                                 max_steps=self.options.max_steps, progress=self.options.progress,
                                 desc="match", jitted=self._cache, extra=self._achieved)
        x = self.x0 + res.y * self.scale
        achieved0, achieved = res.extra
        resid = _violations(self.targets, achieved, values)
        tols = np.array([t.tol for t in self.targets.targets])
        # reached targets count, whatever stopped the solver (e.g. a step limit hit after)
        converged = bool(np.all(np.isfinite(achieved)) and np.all(np.abs(resid) <= tols))
        return MatchResult(
            lattice=apply_values(self.lattice, self.varies, x),
            knobs=dict(zip(self.keys, map(float, x))),
            knobs_initial=dict(zip(self.keys, map(float, start))),
            targets=tuple(self.targets.targets) if values is self.targets.values else tuple(
                dataclasses.replace(t, value=float(v)) for t, v in zip(self.targets.targets, values)),
            achieved=achieved, achieved_initial=achieved0, residuals=resid,
            converged=converged, iterations=res.iterations, message=res.message,
            history=res.history, time_s=res.time_s)


def _violations(targets: ResolvedTargets, achieved, values) -> np.ndarray:
    d = np.asarray(achieved) - np.asarray(values)
    ops = np.array([t.op for t in targets.targets])
    return np.where(ops == "==", d, np.where(ops == "<", np.maximum(d, 0), np.minimum(d, 0)))


def match(lat: Lattice, rp, knobs, targets, *, solver=None, options: MatchOptions | None = None,
          **option_kwargs) -> MatchResult:
    """Vary ``knobs`` of ``lat`` until the optics reach ``targets``.

    Example:
        ``res = jacc.match(lat, rp, knobs={"qf": "k1", "qd": "k1"}, targets={"qx": 4.30, "qy": 2.60})``
        then ``res.converged``, ``res.lattice`` (the updated lattice), ``print(res)``.

    Args:
        lat: the lattice (not modified; the solution is in ``result.lattice``).
        rp: reference particle.
        knobs: what varies: ``{"qf": "k1"}`` (a definition: every placement of it),
            ``{"qf:3": "k1"}`` (one placement), ``["kq01", ...]`` (lattice knobs),
            ``"qf.k1"`` strings or `Vary` objects.
        targets: ``{"qx": 4.30, "dqy": 1.0, "betx@qf:1": 12.0, "bety@qd:1": ("<", 30.0)}`` or
            a list of `Target` (with weights, tolerances, inequalities, relative positions).
        solver: optimistix solver (default ``optimistix.LevenbergMarquardt``; also
            ``optimistix.BFGS`` or any least-squares solver / minimiser) or an optax transform.
        options: `MatchOptions`; or give its fields as keywords (``max_steps=50``).
    """
    if options is None:
        options = MatchOptions(**option_kwargs)
    elif option_kwargs:
        options = dataclasses.replace(options, **option_kwargs)
    parsed = parse_targets(targets)
    key = _cache_key(lat, rp, knobs, parsed, solver, options)
    matcher = _MATCHERS.pop(key, None) if key is not None else None
    if matcher is not None and not matcher.rebind(lat):
        matcher = None
    if matcher is None:
        matcher = Matcher(lat, rp, knobs, parsed, solver=solver, options=options)
    if key is not None:
        _MATCHERS[key] = matcher  # most recent last
        while len(_MATCHERS) > _MAX_CACHED:
            _MATCHERS.pop(next(iter(_MATCHERS)))
    return matcher.solve(values=np.array([t.value for t in parsed]))


# Compiled problems of recent `match` calls: a lattice of the same structure (any strengths),
# the same knobs, target quantities and solver reuse the program with the lattice's values and
# the new target values.
_MATCHERS: dict = {}
_MAX_CACHED = 8


def _cache_key(lat, rp, knobs, targets, solver, options):
    try:
        structure = tuple((t.quantity, t.at, t.relative_to, t.op, t.weight, t.tol, t.label) for t in targets)
        hash(structure)
        knob_key = tuple(v.key + f"/{v.step}" for v in parse_knobs(knobs))
        key = (lat.structure_key(), lat.name, rp.reference(), knob_key, structure, repr(solver),
               repr(options))
        hash(key)
        return key
    except TypeError:  # unhashable pieces (e.g. options holding arrays): no caching
        return None
