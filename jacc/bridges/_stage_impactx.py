"""`ImpactXStage`: the ImpactX elements of a lattice as a differentiable stage of a JAX program.

Each pass exports the lattice with the current parameter values (`ImpactXExporter`, a
millisecond for a short line; kept while the values stay the same) and tracks it in this
process with `track_impactx` (no space charge, no files). Coordinates are converted to
and from ImpactX's convention (``t``, ``pt`` sign-flipped) by `jacc.particles`.
"""

from __future__ import annotations

import numpy as np

from ._impactx import ImpactXExporter, ImpactXExporterConfig
from ._impactx_run import track_impactx
from ._stage import Stage, StageConfig

__all__ = ["ImpactXStage"]


class ImpactXStage(Stage):
    """One pass through the ImpactX elements of ``lat`` as a stage: ``y = stage(values, x)``.

    Args:
        lat: the lattice (copied).
        rp: the reference particle.
        params: knob names or ``"element.field"`` names (see `Stage`).
        config: a `StageConfig` (finite differences or a surrogate for the derivative).
        exporter_config: the `ImpactXExporterConfig`: ImpactX's linear, paraxial or exact
            elements (default: linear, which JACC reproduces with
            `ImpactXExporterConfig.linear_preset`; paraxial matches JACC's default models
            on drifts and quadrupoles).

    Lost particles (ImpactX apertures) come back as NaN rows.
    """

    code = "ImpactX"
    # ImpactX's t carries ~1e-12 relative rounding (its L / beta0 terms); on a FODO line,
    # for a loss with signed weights, 1e-4 gave 1e-5 relative gradient errors, 1e-5 5e-5,
    # 1e-6 5e-4, 1e-3 6e-6 (truncation)
    default_fd_rel_step = 1e-4

    def __init__(self, lat, rp, params, config: StageConfig | None = None,
                 exporter_config: ImpactXExporterConfig | None = None):
        self.exporter_config = ImpactXExporterConfig() if exporter_config is None else exporter_config
        if not isinstance(self.exporter_config, ImpactXExporterConfig):
            raise TypeError(f"ImpactXStage: exporter_config must be an ImpactXExporterConfig, "
                            f"got {type(self.exporter_config).__name__}")
        super().__init__(lat, rp, params, config)
        self._elements = None
        self._applied: np.ndarray | None = None

    def _track(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self._applied is None or not np.array_equal(values, self._applied):
            self._params.apply(values)
            exporter = ImpactXExporter(config=self.exporter_config)
            self._elements = exporter.write_lattice(self._params.lat, self.reference_particle)
            self._applied = np.array(values, copy=True)
        return track_impactx(self._elements, self.reference_particle, x).x
