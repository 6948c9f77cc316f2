"""Simulation models of the twin: one `SimulationModel` subclass per engine.

- `JaccTrackingModel` (``"jacc_tracking"``), `JaccOpticsModel` (``"jacc_optics"``): JACC.
- `XsuiteModel` (``"xsuite"``), `ImpactXModel` (``"impactx"``): the codes as stages with
  a custom VJP (`jacc.bridges`).
- `SurrogateModel` (``"surrogate"``): a trained `jacc.surrogate.Surrogate`.
- `ParticleSource` (``"particle_source"``): a Gaussian beam from Twiss and emittances.
- `RingOrbitModel` (``"ring_orbit"``), `RingTurnByTurnModel` (``"ring_tbt"``),
  `RingOpticsModel` (``"ring_optics"``): the IOTA twin's ring (`jacc_twin.iota`).

`AnyModel` is the union a pipeline's JSON is read with (discriminated by ``type``);
`model_from_json` rebuilds one model from its ``model_dump_json()``.
"""

from typing import Annotated, Union

from pydantic import Field, TypeAdapter

from ._base import Built, SimulationModel
from ._config import LatticeConfig, RuntimeConfig, SharedState
from ._jacc import JaccOpticsModel, JaccTrackingModel
from ._ports import Port, ProcessorOffsetMultiply
from ._ring import RingOpticsModel, RingOrbitModel, RingTurnByTurnModel
from ._source import BeamConfig, ParticleSource
from ._stages import ImpactXModel, XsuiteModel
from ._surrogate import SurrogateModel

MODEL_TYPES = (JaccTrackingModel, JaccOpticsModel, ParticleSource, XsuiteModel, ImpactXModel,
               SurrogateModel, RingOrbitModel, RingTurnByTurnModel, RingOpticsModel)
AnyModel = Annotated[Union[MODEL_TYPES], Field(discriminator="type")]
_ADAPTER = TypeAdapter(AnyModel)


def model_from_json(text: str, *, base_dir=None) -> SimulationModel:
    """The model of a ``model_dump_json()`` text; relative paths resolve against ``base_dir``."""
    return _ADAPTER.validate_json(text, context={"base_dir": base_dir} if base_dir is not None else None)


__all__ = [
    "AnyModel", "BeamConfig", "Built", "ImpactXModel", "JaccOpticsModel", "JaccTrackingModel", "LatticeConfig",
    "MODEL_TYPES", "ParticleSource", "Port", "ProcessorOffsetMultiply", "RingOpticsModel", "RingOrbitModel",
    "RingTurnByTurnModel", "RuntimeConfig",
    "SharedState", "SimulationModel", "SurrogateModel", "XsuiteModel", "model_from_json",
]
