"""`TrackingEngine`: compiles a lattice and a reference particle into pure JAX functions.

``make_model()`` returns ``(spec, static, dynamic)``: ``spec`` is the static structure
(kernels, layout), ``static`` the parameter table of everything not flagged, ``dynamic`` a
dict holding exactly the flagged parameters (``"qf.k1"``, ``"qf:3.k1"``) and knobs
(``"kq01"``) as arrays. ``make_tracking_func(spec)`` gives ``f(dynamic, x0, n_turns=1)``.
"""

from __future__ import annotations

import functools
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jacc.lattice import Lattice

from .cache import compiled_line, default_preset, signature_token
from .compiler import LineSpec
from .fuse import fuse_linear as fuse
from .presets import Preset
from .tracker import (TrackResult, differentiable_kernels, make_line_states, make_reversible_turns,
                      make_turn_tracker, table_from_dynamic)


class StaticParams(eqx.Module):
    """Parameters that are not flagged: the base parameter table (one row per scan step)."""

    table: jax.Array


class TrackingEngine:
    """Compile ``lattice`` for ``reference_particle`` with the element models of ``model``.

    Args:
        lattice: a `jacc.Lattice`.
        reference_particle: a `jacc.ReferenceParticle`.
        model: a preset (`jacc.Xsuite()` by default, `jacc.XsuiteFullEdge()`, or your own).
        specialise: use cheaper equivalent models where compile-time values allow (e.g. a
            quadrupole without skew gradient as one exact flow); the map is the same to
            rounding, but a program compiled for k1s = 0 is recompiled when k1s changes.
    """

    def __init__(self, lattice: Lattice, reference_particle, model: Preset | None = None, *,
                 specialise: bool = True):
        if not isinstance(lattice, Lattice):
            raise TypeError(f"TrackingEngine: lattice must be a jacc.Lattice, got {type(lattice).__name__}")
        if not hasattr(reference_particle, "reference"):
            raise TypeError("TrackingEngine: reference_particle must be a jacc.ReferenceParticle, "
                            f"got {type(reference_particle).__name__}")
        self.lattice = lattice
        self.reference_particle = reference_particle
        self.model = default_preset() if model is None else model
        self.specialise = bool(specialise)
        if not isinstance(self.model, Preset):
            raise TypeError(f"TrackingEngine: model must be a preset such as jacc.Xsuite(), got {self.model!r}")

    @functools.cached_property
    def spec(self) -> LineSpec:
        """The compiled line (compiled once per lattice structure, its table refreshed from
        the lattice's current values; `jacc.engine.cache`)."""
        return compiled_line(self.lattice, self.reference_particle.reference(), self.model,
                             specialise=self.specialise).spec

    def make_model(self):
        """``(spec, static, dynamic)``: structure, fixed parameters, flagged parameters."""
        spec = self.spec
        dynamic = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in spec.dynamic_init.items()}
        return spec, StaticParams(jnp.asarray(spec.table)), dynamic

    def make_tracking_func(self, spec: LineSpec | None = None, *, record: str | None = "centroid",
                           monitors=None, checkpoint: bool = True,
                           reverse: str = "checkpoint",
                           fuse_linear: bool = False) -> Callable[..., TrackResult]:
        """Pure, jittable ``f(dynamic, x0, n_turns=1, alive=None) -> TrackResult``.

        Args:
            record: ``"centroid"`` (turn-by-turn BPM centroids), ``"coordinates"`` (full
                coordinates at the monitors) or None.
            monitors: placement indices or names to observe instead of the lattice's monitors.
            checkpoint: recompute each turn in reverse mode instead of storing every element's
                state (memory per turn, not per element).
            reverse: ``"checkpoint"`` (the default: reverse mode stores the state at each
                turn boundary) or ``"reversible"`` (reverse mode re-tracks backwards with the
                inverse maps: memory independent of the number of turns; no apertures, loss
                flags or monitors on this path, so ``record`` must be None).
            fuse_linear: track each run of constant linear steps (elements modelled with
                `Linear()`, no aperture, nothing flagged) as one affine map
                (`jacc.engine.fuse`); runs stop at the recorded monitors.
        """
        spec = self.spec if spec is None else spec
        at = None if monitors is None else self._placements(monitors)
        if fuse_linear:
            observed = None if record is None else (spec.monitors if at is None else at)
            spec = fuse(spec, observed)
        if reverse == "reversible":
            if record is not None or any(k.aperture is not None for k in spec.kernels):
                raise ValueError("reverse='reversible' tracks without apertures or monitors: "
                                 "pass record=None and a lattice without apertures")
            rrun = make_reversible_turns(spec, param_grads=differentiable_kernels(spec))

            def fr(dynamic, x0, n_turns: int = 1, alive=None):
                x = rrun(table_from_dynamic(spec, dynamic), _as_batch(x0), int(n_turns))
                ok = jnp.all(jnp.isfinite(x), axis=1)
                minus = jnp.where(ok, -1, 0).astype(jnp.int32)
                return TrackResult(x, ok, minus, minus, None)

            return fr
        if reverse != "checkpoint":
            raise ValueError(f"reverse must be 'checkpoint' or 'reversible', got {reverse!r}")
        run = make_turn_tracker(spec, record=record, monitor_at=at, checkpoint=checkpoint,
                                param_grads=differentiable_kernels(spec))

        def f(dynamic, x0, n_turns: int = 1, alive=None):
            x0 = _as_batch(x0)
            alive = jnp.ones(x0.shape[0], bool) if alive is None else jnp.asarray(alive, bool)
            return run(table_from_dynamic(spec, dynamic), x0, alive, int(n_turns))

        return f

    def make_line_func(self, spec: LineSpec | None = None):
        """``h(dynamic, v (6,)) -> (v_out, states (n_steps, 6))``: one particle, one pass."""
        spec = self.spec if spec is None else spec
        run = make_line_states(spec)
        return lambda dynamic, v: run(table_from_dynamic(spec, dynamic), v)

    def make_twiss_func(self, spec: LineSpec | None = None, **options):
        """Pure ``g(dynamic) -> Twiss``; see `jacc.optics` for the options."""
        from jacc.optics.twiss_func import make_twiss_func

        return make_twiss_func(self, self.spec if spec is None else spec, **options)

    def _placements(self, which) -> np.ndarray:
        return _placements(self.lattice, which)


def _placements(lattice: Lattice, which) -> np.ndarray:
    """Placement indices of ``which``: indices, definition names (every placement) or ``name:n``."""
    out = []
    for w in np.atleast_1d(which):
        if isinstance(w, (int, np.integer)):
            out.append(int(w))
        else:
            p = lattice[str(w)]
            idx = [p.index] if hasattr(p, "index") else lattice.placements_of(str(w))
            out += idx
    return np.asarray(out, dtype=np.int64)


def _as_batch(x0, xp=jnp):
    """``x0`` as an ``(n, 6)`` float64 array of the array module ``xp`` (one particle: n = 1)."""
    x0 = xp.asarray(x0, dtype=xp.float64)
    if x0.ndim == 1:
        x0 = x0[None, :]
    if x0.ndim != 2 or x0.shape[1] != 6:
        raise ValueError(f"x0 must have shape (n, 6) (x, px, y, py, t, pt), got {x0.shape}")
    return x0


def _batch_for_call(x0):
    """`_as_batch` for a call from the host: NumPy input stays NumPy (the compiled program
    takes it as it is; ``jnp.asarray`` would add a device transfer of its own)."""
    return _as_batch(x0, jnp if isinstance(x0, jax.Array) else np)


_PROGRAMS: dict = {}
_MONITORS: dict = {}
_FUSED: dict = {}


def track(lattice: Lattice, reference_particle, x0, n_turns: int = 1, *, model: Preset | None = None,
          record: str | None = "centroid", monitors=None, fuse_linear: bool = False) -> TrackResult:
    """Track particles ``x0`` (n, 6) through ``lattice`` for ``n_turns`` turns.

    Compiled programs are cached by lattice structure: tracking again with other strengths
    reuses them, and the lattice's numbers are re-read on every call (nothing is recompiled
    unless the structure, or a value a compile-time choice depends on, changed). See
    `TrackingEngine.make_tracking_func` for ``record``, ``monitors`` and ``fuse_linear``.
    """
    if not hasattr(reference_particle, "reference"):
        raise TypeError("track: reference_particle must be a jacc.ReferenceParticle, "
                        f"got {type(reference_particle).__name__}")
    preset = default_preset() if model is None else model
    if not isinstance(preset, Preset):
        raise TypeError(f"track: model must be a preset such as jacc.Xsuite(), got {preset!r}")
    ref = reference_particle.reference()
    line = compiled_line(lattice, ref, preset, specialise=True)
    spec = line.spec
    mon_key = None if monitors is None else _monitor_key(lattice, line.token, monitors)
    token = line.token
    if fuse_linear:
        spec, token = _fused(line, None if record is None else (spec.monitors if mon_key is None
                                                                else np.asarray(mon_key)))
    key = (token, ref, record, mon_key)
    fn = _PROGRAMS.get(key)
    if fn is None:
        run = make_turn_tracker(spec, record=record, monitor_at=None if mon_key is None else np.asarray(mon_key))
        fn = _PROGRAMS[key] = jax.jit(run, static_argnums=(3,))
    x0 = _batch_for_call(x0)
    return fn(spec.table, x0, np.ones(x0.shape[0], bool), int(n_turns))


def _monitor_key(lattice: Lattice, token: int, monitors) -> tuple[int, ...]:
    """Placement indices of ``monitors`` (names or indices), memoised per line structure."""
    which = tuple(np.atleast_1d(monitors).tolist())
    key = (token, which)
    hit = _MONITORS.get(key)
    if hit is None:
        hit = _MONITORS[key] = tuple(_placements(lattice, which).tolist())
    return hit


def _fused(line, observed) -> tuple[LineSpec, int]:
    """`fuse` of ``line.spec`` and its signature token, recomputed only when the table changed
    (the fused rows hold products of the elements' matrices)."""
    spec = line.spec
    key = (line.token, None if observed is None else tuple(np.asarray(observed).tolist()))
    hit = _FUSED.get(key)
    if hit is None or not (hit[0] is spec or np.array_equal(hit[0].table, spec.table)):
        fused = fuse(spec, observed)
        hit = _FUSED[key] = (spec, fused, signature_token(fused))
    return hit[1], hit[2]
