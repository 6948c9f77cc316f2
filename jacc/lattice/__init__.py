"""Hardware description of a lattice (DESIGN.md layer 1): Pydantic models, JSON and MAD-X I/O."""

from .base import Aperture, Element, LatticeError, PhysicsWarning
from .elements import (
    ELEMENT_TYPES, ELEMENTS_BY_NAME, AnyElement, DipoleEdge, Drift, EllipticalAperture, FieldMap,
    HKicker, HVCorrector, Marker, Monitor, Multipole, NonlinearInsertField, NonlinearLens, Octupole,
    Quadrupole, RBend,
    RectangularAperture, RFCavity, SBend, Sextupole, Solenoid, VKicker, element_from_dict,
)
from .expressions import Expression, ExpressionError
from .lattice import Knob, Lattice, Line
from .placement import PlacedElement

# Explicit, so that ``from jacc.lattice import *`` (jacc/__init__.py) re-exports the names and
# not the submodules: without it ``jacc.lattice`` became the submodule ``jacc.lattice.lattice``.
__all__ = [
    "ELEMENT_TYPES", "ELEMENTS_BY_NAME", "AnyElement", "Aperture", "DipoleEdge", "Drift", "Element",
    "EllipticalAperture", "Expression", "ExpressionError", "FieldMap", "HKicker", "HVCorrector",
    "Knob", "Lattice", "LatticeError", "Line", "Marker", "Monitor", "Multipole",
    "NonlinearInsertField", "NonlinearLens",
    "Octupole", "PhysicsWarning", "PlacedElement", "Quadrupole", "RBend", "RectangularAperture",
    "RFCavity", "SBend", "Sextupole", "Solenoid", "VKicker", "element_from_dict",
]
