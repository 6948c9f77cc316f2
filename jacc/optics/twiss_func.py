"""Public optics entry points: `jacc.twiss` (cached by lattice structure) and
`TrackingEngine.make_twiss_func` (a pure function of the flagged parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jacc.engine import TrackingEngine
from jacc.engine.tracker import make_line_states, table_from_dynamic

from .closed_orbit import ClosedOrbitOptions
from .twiss import TwissInit, make_twiss_core

_METHODS = ("4d",)
_CACHE: dict = {}
_INIT_FIELDS = ("betx", "alfx", "bety", "alfy", "dx", "dpx", "dy", "dpy", "x", "px", "y", "py",
                "mux", "muy")


def _check(method, init):
    if method == "6d":
        raise NotImplementedError("twiss(method='6d') is not implemented yet; use method='4d' "
                                  "(RF cavities are switched off, pt is held fixed)")
    if method not in _METHODS:
        raise ValueError(f"twiss: method must be one of {_METHODS + ('6d',)}, got {method!r}")
    if init is not None and not isinstance(init, TwissInit):
        raise TypeError(f"twiss: init must be a jacc.TwissInit, got {type(init).__name__}")


def init_vector(init: TwissInit | None):
    """The 14 initial values in the order the core reads them (zeros for rings)."""
    if init is None:
        return jnp.zeros(len(_INIT_FIELDS))
    return jnp.stack([jnp.asarray(getattr(init, k), float) for k in _INIT_FIELDS])


def make_twiss_func(engine: TrackingEngine, spec, *, method: str = "4d", init: TwissInit | None = None,
                    delta0: float = 0.0, options: ClosedOrbitOptions | None = None,
                    with_status: bool = False):
    """Pure ``g(dynamic) -> Twiss`` (or ``(Twiss, TwissStatus)`` with ``with_status``).

    A ring (``init=None``) gets the periodic solution around its 4D closed orbit at
    ``delta0``; a line starts from ``init``.
    """
    _check(method, init)
    core = make_twiss_core(spec, make_line_states(spec), periodic=init is None,
                           opts=options or ClosedOrbitOptions(), name=engine.lattice.name)
    iv = init_vector(init)

    def g(dynamic):
        tw, status = core(table_from_dynamic(spec, dynamic), jnp.asarray(delta0, float), iv)
        return (tw, status) if with_status else tw

    return g


def twiss(lat, rp, method: str = "4d", *, init: TwissInit | None = None, delta0: float = 0.0,
          model=None, options: ClosedOrbitOptions | None = None, return_status: bool = False):
    """Optics of a ring (periodic, ``init=None``) or of a line from ``init``.

    Args:
        lat: a `jacc.Lattice`; rp: its `jacc.ReferenceParticle`.
        method: ``"4d"``: transverse optics at fixed momentum deviation ``delta0`` (RF off).
        init: `TwissInit` for a transfer line; None for a ring.
        delta0: momentum deviation dp/p0 of the reference orbit.
        model: preset (default `jacc.Xsuite()`).
        options: `ClosedOrbitOptions`.
        return_status: also return the `TwissStatus` (closed orbit converged, stability).

    The compiled program is cached by lattice structure: new strengths reuse it.
    Raises ValueError when the closed orbit is not found or the motion is unstable (unless
    ``return_status``, which reports it instead).
    """
    _check(method, init)
    engine = TrackingEngine(lat, rp, model, specialise=False)
    spec = engine.spec
    opts = options or ClosedOrbitOptions()
    key = (spec.signature, spec.ref, type(engine.model).__name__, repr(engine.model.models), method,
           init is None, opts, lat.name)
    fn = _CACHE.get(key)
    if fn is None:
        core = make_twiss_core(spec, make_line_states(spec), periodic=init is None, opts=opts,
                               name=lat.name)
        fn = jax.jit(core)
        _CACHE[key] = fn
    dyn = {k: jnp.asarray(v) for k, v in spec.dynamic_init.items()}
    tw, status = fn(table_from_dynamic(spec, dyn), jnp.asarray(delta0, float), init_vector(init))
    if return_status:
        return tw, status
    if init is None and not bool(status.converged):
        raise ValueError(f"twiss: no closed orbit found for '{lat.name}' at delta0={delta0} "
                         f"(residual {float(status.residual):.3e}); pass return_status=True to inspect")
    if not bool(status.stable):
        raise ValueError(f"twiss: the one-turn map of '{lat.name}' is unstable (|cos mu| >= 1)")
    return tw
