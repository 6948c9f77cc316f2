"""Bridges to other codes: synthesis of a JACC lattice into Xsuite and ImpactX lattices.

- `XsuiteExporter` / `XsuiteExporterConfig`: an ``xt.Line`` (xtrack).
- `ImpactXExporter` / `ImpactXExporterConfig`: a list of ImpactX element objects, with
  `ImpactXWatchpoint`, an in-memory BPM built on ImpactX's ``Programmable`` element.

xtrack and ImpactX are imported when an exporter runs, not when this package is imported:
JACC works without them.
"""

from ._names import placement_names
from ._xsuite import XsuiteExporter, XsuiteExporterConfig

__all__ = ["XsuiteExporter", "XsuiteExporterConfig", "placement_names"]
