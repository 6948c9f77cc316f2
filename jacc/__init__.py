"""JACC: JAX for ACCelerators, a differentiable accelerator-physics core.

Importing ``jacc`` enables float64 in JAX: physics is computed in double precision. It
also turns on JAX's persistent compilation cache (``JACC_COMPILATION_CACHE``: a folder, or
``off``; see ``jacc._cache``), so that a new process reuses the programs an earlier one
compiled. Under ``JACC_COMPILE=fast`` every program of the process compiles with the
quick tier's XLA options (see ``jacc._tiered``).
"""

import jax as _jax

from . import _cache, _tiered

_tiered.use_quick_flags()  # before JAX starts its backend
_jax.config.update("jax_enable_x64", True)
# before any submodule compiles anything
_cache.enable()

from .lattice import *  # noqa: E402,F401,F403
from .lattice import Knob, Lattice, LatticeError, Line, PhysicsWarning  # noqa: E402,F401
from .particles import (  # noqa: E402,F401
    ReferenceParticle, delta_from_pt, from_particle_group, impactx_to_madx, madx_to_impactx,
    madx_to_xsuite, pt_from_delta, to_particle_group, xsuite_to_madx,
)
from .containers import Envelope, NamedValues, PhaseSpace, Twiss  # noqa: E402,F401
from .physics.base import DriftKick, Linear  # noqa: E402,F401
from .engine import (  # noqa: E402,F401
    MonitorData, Preset, TrackingEngine, TrackResult, Xsuite, XsuiteExactBend, XsuiteFullEdge, track,
)
from .optics import ClosedOrbitOptions, TwissInit, TwissOptions, TwissTable, twiss  # noqa: E402,F401
from . import lattices  # noqa: E402,F401
from . import nonlinear  # noqa: E402,F401
# jacc.match is the function; its pieces: `from jacc.match import Target, Vary, Matcher`
from .match import MatchOptions, MatchResult, Target, Vary, match  # noqa: E402,F401


def __getattr__(name):
    # numpyro and blackjax load only when calibration is used: jacc.calibrate, jacc.correct
    if name in ("calibrate", "correct"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'jacc' has no attribute {name!r}")

__version__ = "0.1.0"
