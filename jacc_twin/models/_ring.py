"""The IOTA twin's ring as pipeline stages: closed orbit, turn-by-turn data, optics.

Each stage is a `SimulationModel` over the compiled programs of `jacc_twin.ring.RingPhysics`
(one per species, shared by every twin of it). Their common input ``parameters`` is the
machine's state vector (`RingPhysics.keys`: corrector knobs, quadrupole knobs, quadrupole
misalignments): the devices' setpoints flow back into it, so a batch of writes is one run
of the ``orbit`` stage. Devices bind to a stage by its name (``segment``) and read its
output ports after each run (`jacc_twin.iota.IotaTwin` hands them over).

- `RingOrbitModel` (``"ring_orbit"``): the 4D closed orbit at momentum offset ``delta``
  (RF off: the orbit of a beam whose energy the RF frequency sets), its one-turn matrix and
  the orbit at the BPMs.
- `RingTurnByTurnModel` (``"ring_tbt"``): BPM positions turn after turn of one particle.
- `RingOpticsModel` (``"ring_optics"``): tunes, chromaticities, momentum compaction and
  slip factor, and the dispersion at the BPMs (`jacc.twiss`, 4D).

They are not differentiable (``diff_mode="none"``): the twin drives them with numbers.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from ._base import Built, SimulationModel
from ._config import RuntimeConfig
from ._ports import Port

__all__ = ["RingOpticsModel", "RingOrbitModel", "RingTurnByTurnModel", "RING_STAGES"]


def _runtime() -> RuntimeConfig:
    return RuntimeConfig(diff_mode="none", use_jit=False)


class _RingStage(SimulationModel):
    """Common part: the species, the ``parameters`` input and the ring's programs."""

    DIFF_MODES: ClassVar[tuple[str, ...]] = ("none",)
    species: Literal["electron", "proton"] = "electron"
    config_runtime: RuntimeConfig = Field(default_factory=_runtime)

    @property
    def ring(self):
        """The `RingPhysics` of the species (shared; compiled programs kept)."""
        from ..ring import RingPhysics

        return RingPhysics.shared(self.species)

    def _complete_ports(self) -> None:
        self.inputs.setdefault("parameters", Port(type="vector", description=(
            "machine state vector (RingPhysics.keys: corrector knobs, quadrupole knobs, misalignments)")))

    def _defaults(self) -> dict:
        return {"parameters": self.ring.base.copy()}


class RingOrbitModel(_RingStage):
    """Closed orbit of the ring at the setting ``parameters`` and momentum offset ``delta``.

    Inputs: ``parameters``; ``guess`` (4,): where the Newton search starts (the last orbit);
    ``delta``: momentum offset ``(p - p0)/p0`` of the beam (the RF frequency sets it).
    Outputs: ``z0`` (4,) at the ring start; ``bpm_x``, ``bpm_y`` at the BPMs [m];
    ``residual`` (one-turn mismatch), ``iterations``, ``alive`` (1: inside the apertures),
    ``jacobian`` (4, 4) one-turn matrix.
    """

    OUTPUTS: ClassVar[dict] = {"z0": ("vector", [4]), "bpm_x": ("vector", None), "bpm_y": ("vector", None),
                               "residual": ("scalar", None), "iterations": ("scalar", None),
                               "alive": ("scalar", None), "jacobian": ("vector", [4, 4])}
    type: Literal["ring_orbit"] = "ring_orbit"

    def _complete_ports(self) -> None:
        super()._complete_ports()
        self.inputs.setdefault("guess", Port(type="vector", shape=[4], default=[0.0, 0.0, 0.0, 0.0],
                                             description="start of the closed-orbit search (x, px, y, py)"))
        self.inputs.setdefault("delta", Port(type="scalar", default=0.0, description="momentum offset (p - p0)/p0"))
        for name in self.OUTPUTS:
            self.outputs.setdefault(name, Port(type=self.OUTPUTS[name][0], unit="m" if name.startswith("bpm") else ""))

    def _build(self, fidelity: str) -> Built:
        ring = self.ring

        def fn(ins):
            return ring.orbit_outputs(ins["parameters"], ins["guess"], ins["delta"])

        return Built(fn, self._defaults())


class RingTurnByTurnModel(_RingStage):
    """BPM positions turn after turn of one particle starting at ``x0`` (6,) at the ring start.

    Inputs: ``parameters``; ``x0`` (MAD-X ``x, px, y, py, t, pt``); ``n_turns``.
    Outputs: ``tbt_x``, ``tbt_y`` (n_turns, n_bpms) [m].
    """

    OUTPUTS: ClassVar[dict] = {"tbt_x": ("vector", None), "tbt_y": ("vector", None)}
    type: Literal["ring_tbt"] = "ring_tbt"

    def _complete_ports(self) -> None:
        super()._complete_ports()
        self.inputs.setdefault("x0", Port(type="vector", shape=[6], default=[0.0] * 6,
                                          description="start of the tracked particle (MAD-X)"))
        self.inputs.setdefault("n_turns", Port(type="scalar", default=1024.0, description="turns to track"))
        for name in self.OUTPUTS:
            self.outputs.setdefault(name, Port(type="vector", unit="m"))

    def _build(self, fidelity: str) -> Built:
        ring = self.ring

        def fn(ins):
            x, y = ring.turn_by_turn(ins["parameters"], ins["x0"], int(ins["n_turns"]))
            return {"tbt_x": x, "tbt_y": y}

        return Built(fn, self._defaults())


class RingOpticsModel(_RingStage):
    """Linear optics of the ring at ``parameters`` (`jacc.twiss`, 4D, about the closed orbit).

    Outputs: ``qx, qy`` (tunes), ``dqx, dqy`` (chromaticities), ``momentum_compaction``,
    ``slip_factor`` (``eta = alpha_c - 1/gamma0^2``), ``disp_x``, ``disp_y`` (dispersion at
    the BPMs [m]), ``revolution_frequency`` [Hz].
    """

    OUTPUTS: ClassVar[dict] = {k: ("scalar", None) for k in (
        "qx", "qy", "dqx", "dqy", "momentum_compaction", "slip_factor", "revolution_frequency")} | {
        "disp_x": ("vector", None), "disp_y": ("vector", None)}
    type: Literal["ring_optics"] = "ring_optics"

    def _complete_ports(self) -> None:
        super()._complete_ports()
        for name, (kind, _) in self.OUTPUTS.items():
            self.outputs.setdefault(name, Port(type=kind))

    def _build(self, fidelity: str) -> Built:
        ring = self.ring

        def fn(ins):
            return ring.optics(ins["parameters"], full=True)

        return Built(fn, self._defaults())


RING_STAGES = (RingOrbitModel, RingTurnByTurnModel, RingOpticsModel)
