"""JACC: JAX for ACCelerators, a differentiable accelerator-physics core.

Importing ``jacc`` enables float64 in JAX: physics is computed in double precision.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from .lattice import *  # noqa: E402,F401,F403
from .lattice import Lattice, Line, Knob, PhysicsWarning, LatticeError  # noqa: E402,F401

__version__ = "0.1.0"
