"""Optics by automatic differentiation (DESIGN.md layer 4)."""

from .closed_orbit import ClosedOrbit, ClosedOrbitOptions, closed_orbit_4d
from .twiss import TwissInit, TwissStatus
from .twiss_func import make_twiss_func, twiss
