"""Public optics entry points: `jacc.twiss` (compiled once per lattice structure) and
`TrackingEngine.make_twiss_func` (a pure function of the flagged parameters)."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jacc.engine import TrackingEngine
from jacc.engine.compiler import LineSpec
from jacc.engine.tracker import table_from_dynamic

from .closed_orbit import ClosedOrbitOptions
from .one_turn import has_rf
from .result import TwissStatus, TwissTable
from .twiss import TwissInit, make_twiss_core

METHODS = ("4d", "6d")
_CACHE: dict = {}
_TRACES = {"count": 0}
_DRAWN = ("Quadrupole", "SBend", "RBend", "Sextupole", "Octupole", "Solenoid", "RFCavity",
          "Multipole", "HKicker", "VKicker", "HVCorrector", "NonlinearLens", "DipoleEdge")


class TwissOptions(eqx.Module):
    """Options of an optics computation.

    Attributes:
        closed_orbit: `ClosedOrbitOptions` of the Newton search.
        chrom: compute chromaticity, Montague functions ``wx, wy``, chromatic phase
            ``dmux, dmuy`` and second-order dispersion (one second-order pass). Without it
            ``dqx, dqy`` are None and the first-order pass alone runs (about half the time).
    """

    closed_orbit: ClosedOrbitOptions = ClosedOrbitOptions()
    chrom: bool = eqx.field(static=True, default=True)


def _options(options) -> TwissOptions:
    if options is None:
        return TwissOptions()
    if isinstance(options, ClosedOrbitOptions):
        return TwissOptions(closed_orbit=options)
    if isinstance(options, TwissOptions):
        return options
    raise TypeError(f"twiss: options must be a jacc.optics.TwissOptions or ClosedOrbitOptions, "
                    f"got {type(options).__name__}")


def _check(method, init, delta0):
    if method not in METHODS:
        raise ValueError(f"twiss: method must be one of {METHODS}, got {method!r}")
    if init is not None and not isinstance(init, TwissInit):
        raise TypeError(f"twiss: init must be a jacc.TwissInit, got {type(init).__name__}")
    if method == "6d" and init is not None:
        raise NotImplementedError("twiss: method='6d' is for rings; use method='4d' with init")
    if method == "6d" and not (isinstance(delta0, (int, float)) and delta0 == 0.0):
        raise ValueError("twiss: delta0 is a 4D option (with RF the closed orbit fixes the energy)")


def init_vector(init: TwissInit | None):
    """The 14 initial values the core reads (a unit placeholder for rings)."""
    if init is None:
        return TwissInit().vector()
    return init.vector()


def layout(spec: LineSpec) -> tuple:
    """``(kind, s_start, s_end, sign)`` of each magnet to draw, from the compiled line.

    ``sign`` is the sign of a quadrupole's ``k1`` (or a sextupole's ``k2``, a bend's
    ``angle``) in the compiled table; 0 when it has none.
    """
    s_end = np.asarray(spec.s_end)
    s_start = np.concatenate([[spec.s0], s_end[:-1]])
    steps = np.asarray(spec.placement_step)
    step_pl = np.asarray(spec.step_placement)
    field = {"Quadrupole": "k1", "Sextupole": "k2", "SBend": "angle", "RBend": "angle"}
    out = []
    for i, kind in enumerate(spec.element_types):
        if kind not in _DRAWN:
            continue
        sign = 0.0
        j = steps[i] - 1
        if kind in field and j >= 0 and step_pl[j] == i:
            col = 0
            for f, n in spec.kernels[spec.kernel_index[j]].layout:
                if f == field[kind]:
                    sign = float(np.sign(spec.table[j, col]))
                col += n
        out.append((kind, float(s_start[i]), float(s_end[i]), sign))
    return tuple(out)


def make_twiss_func(engine: TrackingEngine, spec: LineSpec, *, method: str = "4d",
                    init: TwissInit | None = None, delta0: float = 0.0, options=None,
                    with_status: bool = False):
    """Pure ``g(dynamic) -> TwissTable`` (or ``(TwissTable, TwissStatus)`` with ``with_status``).

    A ring (``init=None``) gets the periodic solution around its closed orbit (4D at
    ``delta0``, or 6D with RF); a line starts from ``init``. ``g`` is jittable and
    differentiable: ``jax.grad(lambda d: loss(g(d)))(dynamic)``. Under jit, failures come
    back in the `TwissStatus` (pass ``with_status=True``), never as an exception.
    """
    _check(method, init, delta0)
    opts = _options(options)
    core = make_twiss_core(spec, periodic=init is None, method=method, opts=opts.closed_orbit,
                           chrom=opts.chrom, name=engine.lattice.name)
    iv = init_vector(init)
    lay = layout(spec)

    def g(dynamic):
        tw, status = core(table_from_dynamic(spec, dynamic), jnp.asarray(delta0, float), iv)
        tw = dataclasses.replace(tw, layout=lay)
        return (tw, status) if with_status else tw

    return g


def trace_count() -> int:
    """How many times `jacc.twiss` traced (compiled) its program in this process."""
    return _TRACES["count"]


def _compiled(spec: LineSpec, engine: TrackingEngine, method: str, periodic: bool, opts: TwissOptions,
              name: str):
    key = (spec.signature, spec.ref, type(engine.model), repr(engine.model.models), method, periodic,
           opts, name)
    fn = _CACHE.get(key)
    if fn is None:
        core = make_twiss_core(spec, periodic=periodic, method=method, opts=opts.closed_orbit,
                               chrom=opts.chrom, name=name)

        def traced(table, delta0, iv):
            _TRACES["count"] += 1  # runs once per compilation, never on cached calls
            return core(table, delta0, iv)

        fn = jax.jit(traced)
        _CACHE[key] = fn
    return fn


def twiss(lat, rp, method: str = "4d", *, init: TwissInit | None = None, delta0: float = 0.0,
          model=None, options=None, return_status: bool = False):
    """Optics of a ring (periodic, ``init=None``) or of a transfer line from ``init``.

    Args:
        lat: a `jacc.Lattice`; rp: its `jacc.ReferenceParticle`.
        method: ``"4d"``: transverse optics at the fixed momentum deviation ``delta0``, RF
            cavities off (as xtrack's ``twiss4d``); ``"6d"``: rings with RF, closed orbit in
            all six coordinates, 6x6 normal form, synchrotron tune ``qs``.
        init: `TwissInit` for a transfer line; None for a ring.
        delta0: momentum deviation dp/p0 of the reference orbit (4D).
        model: element models, a preset (default `jacc.Xsuite()`); see the presets' notes
            on IOTA's vertical chromaticity, where edge models decide the answer.
        options: `TwissOptions` (or just `ClosedOrbitOptions`).
        return_status: return ``(table, TwissStatus)`` and never raise on failure.

    Returns:
        a `TwissTable`: rows are the start, then each placement's exit (MAD-X-like).

    The compiled program is cached by lattice structure: new strengths, knob values and
    initial conditions reuse it (`trace_count` counts compilations).

    Raises:
        ValueError: closed orbit not found or unstable one-turn map (unless
        ``return_status``); method '6d' without RF voltage.
    """
    _check(method, init, delta0)
    opts = _options(options)
    engine = TrackingEngine(lat, rp, model, specialise=False)
    spec = engine.spec
    table = table_from_dynamic(spec, {k: jnp.asarray(v) for k, v in spec.dynamic_init.items()})
    if method == "6d" and not has_rf(spec, table):
        raise ValueError(f"twiss(method='6d'): '{lat.name}' has no RF cavity with nonzero voltage; "
                         "use method='4d'")
    fn = _compiled(spec, engine, method, init is None, opts, lat.name)
    tw, status = fn(table, jnp.asarray(delta0, float), init_vector(init))
    tw = dataclasses.replace(tw, layout=layout(spec))
    if return_status:
        return tw, status
    if not bool(status.converged):
        raise ValueError(f"twiss: no closed orbit found for '{lat.name}' at delta0={delta0} "
                         f"(residual {float(status.residual):.3e}); pass return_status=True to inspect")
    if not bool(status.stable):
        raise ValueError(f"twiss: the one-turn map of '{lat.name}' is unstable or its modes cannot "
                         "be separated; pass return_status=True to inspect")
    return tw


__all__ = ["TwissOptions", "TwissStatus", "TwissTable", "layout", "make_twiss_func", "trace_count", "twiss"]
