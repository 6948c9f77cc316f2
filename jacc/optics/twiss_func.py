"""Public optics entry points: `jacc.twiss` (compiled once per lattice structure) and
`TrackingEngine.make_twiss_func` (a pure function of the flagged parameters)."""

from __future__ import annotations

import copy
import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jacc._tiered import TieredJit
from jacc.engine import TrackingEngine
from jacc.engine.cache import compiled_line, default_preset, signature_digest
from jacc.engine.compiler import LineSpec
from jacc.engine.presets import Preset
from jacc.engine.tracker import table_from_dynamic

from .closed_orbit import ClosedOrbitOptions
from .one_turn import has_rf
from .result import TwissStatus, TwissTable
from .twiss import INIT_FIELDS, TwissInit, make_twiss_core

METHODS = ("4d", "6d")
CHROM_DERIVATIVES = ("exact", "difference")
_CACHE: dict = {}
_LAYOUTS: dict = {}  # line token -> layout template
_RING_INIT: list = []
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
        chrom_derivative: how the transfer matrices are differentiated in delta for those:
            ``"exact"`` (automatic differentiation, second derivatives of the element maps)
            or ``"difference"`` (a four-point central difference of the element Jacobians
            along the exact orbit tangent, within about 1e-10 of the exact values: the
            program holds first-order maps only and compiles in about half the time, and a
            gradient of chromaticity is a second-order program instead of a third-order one).
    """

    closed_orbit: ClosedOrbitOptions = ClosedOrbitOptions()
    chrom: bool = eqx.field(static=True, default=True)
    chrom_derivative: str = eqx.field(static=True, default="exact")

    def __check_init__(self):
        if self.chrom_derivative not in CHROM_DERIVATIVES:
            raise ValueError(f"TwissOptions: chrom_derivative must be one of {CHROM_DERIVATIVES}, "
                             f"got {self.chrom_derivative!r}")


def _options(options) -> TwissOptions:
    if options is None:
        return TwissOptions()
    if isinstance(options, ClosedOrbitOptions):
        return TwissOptions(closed_orbit=options)
    if isinstance(options, TwissOptions):
        return options
    raise TypeError(f"twiss: options must be a jacc.optics.TwissOptions or ClosedOrbitOptions, "
                    f"got {type(options).__name__}")


_DEFAULT_OPTIONS: list = []


def _options_key(options) -> TwissOptions | None:
    """`_options`, with the default options as None (a cheap program-cache key)."""
    if options is None:
        return None
    opts = _options(options)
    if not _DEFAULT_OPTIONS:
        _DEFAULT_OPTIONS.append(TwissOptions())
    return None if opts == _DEFAULT_OPTIONS[0] else opts


def _with_layout(tw: TwissTable, lay: tuple) -> TwissTable:
    """``tw`` with its static ``layout`` set (a shallow copy: the columns are not converted again)."""
    out = copy.copy(tw)
    object.__setattr__(out, "layout", lay)
    return out


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
        if not _RING_INIT:  # built once: a ring's placeholder never changes
            _RING_INIT.append(np.asarray(TwissInit().vector()))
        return _RING_INIT[0]
    try:
        return np.array([float(getattr(init, k)) for k in INIT_FIELDS])
    except (TypeError, jax.errors.ConcretizationTypeError):  # traced fields
        return init.vector()


def layout(spec: LineSpec) -> tuple:
    """``(kind, s_start, s_end, sign)`` of each magnet to draw, from the compiled line.

    ``sign`` is the sign of a quadrupole's ``k1`` (or a sextupole's ``k2``, a bend's
    ``angle``) in the compiled table; 0 when it has none.
    """
    return _layout(spec, _layout_template(spec))


def _layout_template(spec: LineSpec):
    """What `layout` needs besides the table: drawn placements, their s, and the table
    cell holding each one's sign (row -1: none). The same for every table of a line."""
    s_end = np.asarray(spec.s_end)
    s_start = np.concatenate([[spec.s0], s_end[:-1]])
    steps = np.asarray(spec.placement_step)
    step_pl = np.asarray(spec.step_placement)
    field = {"Quadrupole": "k1", "Sextupole": "k2", "SBend": "angle", "RBend": "angle"}
    items, rows, cols = [], [], []
    for i, kind in enumerate(spec.element_types):
        if kind not in _DRAWN:
            continue
        row = col = -1
        j = steps[i] - 1
        if kind in field and j >= 0 and step_pl[j] == i:
            c = 0
            for f, n in spec.kernels[spec.kernel_index[j]].layout:
                if f == field[kind]:
                    row, col = j, c
                c += n
        items.append((kind, float(s_start[i]), float(s_end[i])))
        rows.append(row)
        cols.append(col)
    return tuple(items), np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), {}


def _layout(spec: LineSpec, template) -> tuple:
    items, rows, cols, last = template
    if last.get("spec") is spec:  # the same refreshed line: the same table
        return last["layout"]
    last["spec"] = spec
    table = np.asarray(spec.table)
    signs = np.where(rows >= 0, np.sign(table[rows, cols]) if table.size else 0.0, 0.0)
    if last.get("signs") is not None and np.array_equal(last["signs"], signs):
        return last["layout"]
    out = tuple((kind, s0, s1, float(sg)) for (kind, s0, s1), sg in zip(items, signs))
    last["signs"], last["layout"] = signs, out
    return out


def make_twiss_func(engine: TrackingEngine, spec: LineSpec, *, method: str = "4d",
                    init: TwissInit | None = None, delta0: float = 0.0, options=None,
                    with_status: bool = False, table_arg: bool = False):
    """Pure ``g(dynamic) -> TwissTable`` (or ``(TwissTable, TwissStatus)`` with ``with_status``).

    A ring (``init=None``) gets the periodic solution around its closed orbit (4D at
    ``delta0``, or 6D with RF); a line starts from ``init``. ``g`` is jittable and
    differentiable: ``jax.grad(lambda d: loss(g(d)))(dynamic)``. Under jit, failures come
    back in the `TwissStatus` (pass ``with_status=True``), never as an exception.

    ``table_arg=True`` gives ``g(table, dynamic)`` instead: the parameter table of the
    unflagged values (``spec.table`` or that of a refreshed line with the same signature) is
    an argument, so that one compiled program serves new strengths.
    """
    _check(method, init, delta0)
    opts = _options(options)
    core = make_twiss_core(spec, periodic=init is None, method=method, opts=opts.closed_orbit,
                           chrom=opts.chrom, name=engine.lattice.name,
                           chrom_derivative=opts.chrom_derivative)
    iv = init_vector(init)
    lay = layout(spec)

    def g_table(table, dynamic):
        line = dataclasses.replace(spec, table=table)  # the setters write into this table
        tw, status = core(table_from_dynamic(line, dynamic), jnp.asarray(delta0, float), iv)
        tw = dataclasses.replace(tw, layout=lay)
        return (tw, status) if with_status else tw

    if table_arg:
        return g_table
    return lambda dynamic: g_table(spec.table, dynamic)


def trace_count() -> int:
    """How many optics programs `jacc.twiss` made in this process: traced and compiled, or
    read from the program store beside the persistent cache (`jacc._tiered`)."""
    return _TRACES["count"]


def _compiled(spec: LineSpec, token: int, method: str, periodic: bool, opts: TwissOptions | None,
              name: str):
    """The jitted optics program of the line ``token`` names (``opts`` None: the defaults)."""
    key = (token, spec.ref, method, periodic, opts, name)
    fn = _CACHE.get(key)
    if fn is None:
        o = TwissOptions() if opts is None else opts
        core = make_twiss_core(spec, periodic=periodic, method=method, opts=o.closed_orbit,
                               chrom=o.chrom, name=name, chrom_derivative=o.chrom_derivative)

        def traced(table, delta0, iv):
            return _as_arrays(*core(table, delta0, iv))

        # a quick program first, the optimised one when ready; kept across processes
        persist = repr((signature_digest(spec), spec.ref, method, periodic, o, name))
        program = TieredJit(traced, persist_key=persist, on_build=_count_build)
        rebuild = _Rebuild((f"{name}$start",) + tuple(spec.names))
        fn = lambda *args: rebuild(program(*args))  # noqa: E731
        fn.program = program
        _CACHE[key] = fn
    return fn


def _count_build() -> None:
    _TRACES["count"] += 1  # once per program made, never on cached calls


def _as_arrays(tw: TwissTable, status: TwissStatus):
    """The arrays of a table and its status in plain dicts (programs kept across processes
    return standard containers)."""
    cols = {f.name: getattr(tw, f.name) for f in dataclasses.fields(tw)
            if f.name not in ("name", "layout") and getattr(tw, f.name) is not None}
    return cols, {f.name: getattr(status, f.name) for f in dataclasses.fields(status)}


def _from_arrays(out, rows: tuple) -> tuple:
    cols, status = out
    return TwissTable(name=rows, **cols), TwissStatus(**status)


class _Rebuild:
    """`_from_arrays` for one program: the first call builds the table and status (Equinox
    runs their converters and checks, about a millisecond), later calls unflatten the
    program's arrays into the same tree structure (tens of microseconds)."""

    def __init__(self, rows: tuple):
        self.rows = rows
        self.plans = None

    def __call__(self, out) -> tuple:
        if self.plans is not None:
            return tuple(jax.tree.unflatten(tdef, [arrays[k] for k in order])
                         for (tdef, order), arrays in zip(self.plans, out))
        built = _from_arrays(out, self.rows)
        plans = [_plan(obj, arrays) for obj, arrays in zip(built, out)]
        if all(p is not None for p in plans):
            self.plans = plans
        return built


def _plan(obj, arrays: dict):
    """``(treedef, field order)`` that rebuilds ``obj`` from ``arrays``, or None when its
    leaves are not exactly those arrays (a converter changed one)."""
    order = [f.name for f in dataclasses.fields(obj) if f.name in arrays]
    leaves, tdef = jax.tree.flatten(obj)
    if len(leaves) != len(order) or any(leaf is not arrays[k] for leaf, k in zip(leaves, order)):
        return None
    return tdef, order


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
    opts = _options_key(options)
    preset = default_preset() if model is None else model
    if not isinstance(preset, Preset):
        raise TypeError(f"twiss: model must be a preset such as jacc.Xsuite(), got {preset!r}")
    if not hasattr(rp, "reference"):
        raise TypeError(f"twiss: rp must be a jacc.ReferenceParticle, got {type(rp).__name__}")
    line = compiled_line(lat, rp.reference(), preset, specialise=False)
    spec = line.spec
    if method == "6d" and not has_rf(spec, spec.table):
        raise ValueError(f"twiss(method='6d'): '{lat.name}' has no RF cavity with nonzero voltage; "
                         "use method='4d'")
    fn = _compiled(spec, line.token, method, init is None, opts, lat.name)
    d0 = np.float64(delta0) if isinstance(delta0, (int, float, np.floating)) else jnp.asarray(delta0, float)
    tw, status = fn(spec.table, d0, init_vector(init))
    template = _LAYOUTS.get(line.token)
    if template is None:
        template = _LAYOUTS[line.token] = _layout_template(spec)
    tw = _with_layout(tw, _layout(spec, template))
    if return_status:
        return tw, status
    if not bool(status.converged):
        what = "no closed orbit found" if init is None else "the orbit from init did not converge"
        raise ValueError(f"twiss: {what} for '{lat.name}' at delta0={delta0} "
                         f"(residual {float(status.residual):.3e}); pass return_status=True to inspect")
    if not bool(status.stable):
        raise ValueError(f"twiss: the one-turn map of '{lat.name}' is unstable or its modes cannot "
                         "be separated; pass return_status=True to inspect")
    return tw


__all__ = ["TwissOptions", "TwissStatus", "TwissTable", "layout", "make_twiss_func", "trace_count", "twiss"]
