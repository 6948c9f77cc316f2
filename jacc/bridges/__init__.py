"""Bridges to other codes: synthesis of a JACC lattice into Xsuite and ImpactX lattices.

- `XsuiteExporter` / `XsuiteExporterConfig`: an ``xt.Line`` (xtrack).
- `ImpactXExporter` / `ImpactXExporterConfig`: a list of ImpactX element objects
  (`ImpactXLine`), with `ImpactXWatchpoint`, an in-memory BPM built on ImpactX's
  ``Programmable`` element, and `track_impactx` to run them in this process.
- `XsuiteStage` / `ImpactXStage` / `StageConfig`: one pass of either code as a stage of a JAX
  program (``jax.pure_callback``), differentiable through a ``jax.custom_vjp`` from finite
  differences or a trained surrogate.
- Phase space across codes: `to_xsuite_particles` / `from_xsuite_particles`,
  `to_impactx_particles` / `from_impactx_particles`, `to_particle_group` /
  `from_particle_group` (openPMD-beamphysics).

xtrack and ImpactX are imported when an exporter runs, not when this package is imported:
JACC works without them.
"""

from ._impactx import ImpactXExporter, ImpactXExporterConfig, ImpactXLine
from ._impactx_run import ImpactXTrackResult, track_impactx
from ._names import placement_names
from ._phase_space import (from_impactx_particles, from_particle_group, from_xsuite_particles,
                           to_impactx_particles, to_particle_group, to_xsuite_particles)
from ._stage import COORDINATES, Stage, StageConfig
from ._stage_impactx import ImpactXStage
from ._stage_xsuite import XsuiteStage
from ._watchpoint import ImpactXWatchpoint, WatchpointConfig
from ._xsuite import XsuiteExporter, XsuiteExporterConfig

__all__ = [
    "ImpactXExporter", "ImpactXExporterConfig", "ImpactXLine", "ImpactXTrackResult",
    "ImpactXWatchpoint", "WatchpointConfig", "XsuiteExporter", "XsuiteExporterConfig",
    "placement_names", "track_impactx",
    "COORDINATES", "ImpactXStage", "Stage", "StageConfig", "XsuiteStage",
    "from_impactx_particles", "from_particle_group", "from_xsuite_particles",
    "to_impactx_particles", "to_particle_group", "to_xsuite_particles",
]
