"""The twin's LUME face: `TwinLUMEModel`, a lume-base ``LUMEModel`` over an `IotaTwin`.

SLAC's virtual accelerators (lume-cheetah, lume-pyat) implement this interface, so Xopt and
Badger drive the twin as any LUME model: ``get([names]) -> dict``, ``get_value(name)``,
``set({name: value})``, ``set_value(name, value)``, ``reset()``, ``supported_variables``.
Names are the variables of `jacc_twin.names` (``HCA1R:SETTING``, ``IBPMA1:X``...);
settings carry their ranges (a value outside raises ``ValueError``), readings are
read-only. A ``set`` is one atomic write of the twin (`IotaTwin.write`).
"""

from __future__ import annotations

from lume.model import LUMEModel
from lume.variables import ScalarVariable

from .names import variables

__all__ = ["TwinLUMEModel", "lume_variables"]


def lume_variables() -> dict:
    """``lume.variables.ScalarVariable`` for every scalar variable of the name table."""
    out = {}
    for v in variables().values():
        if v.kind == "waveform":
            continue
        out[v.variable] = ScalarVariable(name=v.variable, description=v.description, unit=v.unit or None,
                                         value_range=v.value_range, read_only=v.read_only,
                                         default_validation_config="error" if not v.read_only else "none")
    return out


class TwinLUMEModel(LUMEModel):
    """A lume-base ``LUMEModel`` over a twin.

    Args:
        twin: an `jacc_twin.iota.IotaTwin`.
        settle: simulated seconds the twin's clock runs after each ``set`` (0: none; the
            synchronous policy already shows the write in the BPM readings).
    """

    def __init__(self, twin, settle: float = 0.0):
        self.twin = twin
        self.settle = float(settle)
        self._variables = lume_variables()

    @property
    def supported_variables(self) -> dict:
        return self._variables

    def _get(self, names: list[str]) -> dict:
        return {n: self.twin.read(n) for n in names}

    def _set(self, values: dict) -> None:
        self.twin.write({k: float(v) for k, v in values.items()})
        if self.settle > 0:
            self.twin.step(self.settle)

    def reset(self) -> None:
        """Undo every write (the twin's seeded faults stay)."""
        self.twin.reset()
