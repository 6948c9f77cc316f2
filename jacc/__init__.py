"""JACC: JAX for ACCelerators, a differentiable accelerator-physics core.

Importing ``jacc`` enables float64 in JAX: physics is computed in double precision.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

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

__version__ = "0.1.0"
