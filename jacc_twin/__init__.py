"""JACC-Twin: the digital-twin layer built on JACC.

- `SimulationModel`: the Pydantic contract of an engine (typed ports, runtime and lattice
  configuration); one subclass per engine: `JaccTrackingModel`, `JaccOpticsModel`,
  `XsuiteModel`, `ImpactXModel`, `SurrogateModel`, the `ParticleSource`, and the IOTA
  twin's ring stages `RingOrbitModel`, `RingTurnByTurnModel`, `RingOpticsModel`
  (`jacc_twin.models`).
- `Pipeline`: models in order, checked port by port, JSON round trip, run end to end and
  differentiated (``run(inputs, grad_of=..., wrt=[...])``).
- ``jacc-twin`` (`jacc_twin.cli`): the command line; ``jacc-twin pipeline FILE.json``.

Imports are lazy: ``import jacc_twin`` loads neither JAX nor JACC; the first use of a name
above imports `jacc` (which turns on float64) and then the module that defines it. The
device layer (`jacc_twin.devices`, `jacc_twin.loop`, `jacc_twin.names`) needs no JAX.
"""

import importlib

_LAZY = {
    **{name: ".models" for name in (
        "BeamConfig", "ImpactXModel", "JaccOpticsModel", "JaccTrackingModel", "LatticeConfig",
        "ParticleSource", "Port", "ProcessorOffsetMultiply", "RingOpticsModel", "RingOrbitModel",
        "RingTurnByTurnModel", "RuntimeConfig", "SharedState", "SimulationModel", "SurrogateModel",
        "XsuiteModel", "model_from_json")},
    **{name: ".pipeline" for name in ("Loss", "LossTerm", "Pipeline")},
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'jacc_twin' has no attribute {name!r}")
    importlib.import_module("jacc")  # float64 before any array of the twin is made
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
