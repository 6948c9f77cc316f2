"""JACC-Twin: the digital-twin layer built on JACC.

- `SimulationModel`: the Pydantic contract of an engine (typed ports, runtime and lattice
  configuration); one subclass per engine: `JaccTrackingModel`, `JaccOpticsModel`,
  `XsuiteModel`, `ImpactXModel`, `SurrogateModel`, and the `ParticleSource` (`jacc_twin.models`).
- `Pipeline`: models in order, checked port by port, JSON round trip, run end to end and
  differentiated (``run(inputs, grad_of=..., wrt=[...])``).
- ``jacc-twin`` (`jacc_twin.cli`): the command line; ``jacc-twin pipeline FILE.json``.
"""

import jacc as _jacc  # noqa: F401  (float64 on import)

from .models import (  # noqa: E402
    BeamConfig, ImpactXModel, JaccOpticsModel, JaccTrackingModel, LatticeConfig, ParticleSource, Port,
    ProcessorOffsetMultiply, RuntimeConfig, SharedState, SimulationModel, SurrogateModel, XsuiteModel,
    model_from_json,
)
from .pipeline import Loss, LossTerm, Pipeline  # noqa: E402

__all__ = [
    "BeamConfig", "ImpactXModel", "JaccOpticsModel", "JaccTrackingModel", "LatticeConfig", "Loss",
    "LossTerm", "ParticleSource", "Pipeline", "Port", "ProcessorOffsetMultiply", "RuntimeConfig",
    "SharedState", "SimulationModel", "SurrogateModel", "XsuiteModel", "model_from_json",
]
