"""Optics by automatic differentiation (DESIGN.md layer 4).

`twiss` (also ``jacc.twiss``) computes periodic (4D, 6D) and transfer-line optics with
MAD-X column names; `TrackingEngine.make_twiss_func` gives the same as a pure function of
the flagged parameters, for ``jax.grad``. Closed orbit, normal forms, envelopes and the
table views live in the modules below.
"""

from .closed_orbit import ClosedOrbit, ClosedOrbitOptions, closed_orbit, make_closed_orbit
from .envelope import EnvelopeTable, beam_sizes, make_envelope_func, propagate_envelope
from .normal_form import NormalForm, normal_form_4d, normal_form_6d
from .result import TwissStatus, TwissTable
from .twiss import TwissInit, make_twiss_core
from .twiss_func import TwissOptions, make_twiss_func, trace_count, twiss

__all__ = [
    "ClosedOrbit", "ClosedOrbitOptions", "EnvelopeTable", "NormalForm", "TwissInit", "TwissOptions",
    "TwissStatus", "TwissTable", "beam_sizes", "closed_orbit", "make_closed_orbit",
    "make_envelope_func", "make_twiss_core", "make_twiss_func", "normal_form_4d", "normal_form_6d",
    "propagate_envelope", "trace_count", "twiss",
]
