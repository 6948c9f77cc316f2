"""Bridges to other codes: synthesis of a JACC lattice into Xsuite and ImpactX lattices.

- `XsuiteExporter` / `XsuiteExporterConfig`: an ``xt.Line`` (xtrack).
- `ImpactXExporter` / `ImpactXExporterConfig`: a list of ImpactX element objects
  (`ImpactXLine`), with `ImpactXWatchpoint`, an in-memory BPM built on ImpactX's
  ``Programmable`` element, and `track_impactx` to run them in this process.

xtrack and ImpactX are imported when an exporter runs, not when this package is imported:
JACC works without them.
"""

from ._impactx import ImpactXExporter, ImpactXExporterConfig, ImpactXLine
from ._impactx_run import ImpactXTrackResult, track_impactx
from ._names import placement_names
from ._watchpoint import ImpactXWatchpoint, WatchpointConfig
from ._xsuite import XsuiteExporter, XsuiteExporterConfig

__all__ = [
    "ImpactXExporter", "ImpactXExporterConfig", "ImpactXLine", "ImpactXTrackResult",
    "ImpactXWatchpoint", "WatchpointConfig", "XsuiteExporter", "XsuiteExporterConfig",
    "placement_names", "track_impactx",
]
