"""Virtual devices of the twin (DESIGN.md layer 6): Pydantic models, serialisable to JSON.

- `VirtualDevice`: the base (streams at integer-counted rates, ``query_next_event``,
  ``on_event``, binding to a simulation segment, seeded noise); `EventRecord`.
- `GenericValueModel`: setpoint, limits, response model (`Instant`, `Exponential`,
  `Underdamped`), noise, resolution, event threshold.
- `BPM`: calibration errors, 10 Hz and 1 Hz orbit, turn-by-turn and single-pass data.
- `MagnetPowerSupply` with its `ExcitationFunction`; `DCCT`; `RFStation`; `Timer`.
- `Device`: the discriminated union of every device type; `DeviceList` its JSON container.
"""

from typing import Annotated, Union

from pydantic import ConfigDict, Field, RootModel

from ._base import EventRecord, VirtualDevice
from ._beam import DCCT, RFStation
from ._bpm import BPM
from ._generic import GenericValueModel, LimitError
from ._magnet import ExcitationFunction, MagnetPowerSupply, excitation
from ._response import Exponential, Instant, ResponseModel, Underdamped
from ._timer import Timer

Device = Annotated[Union[GenericValueModel, MagnetPowerSupply, BPM, DCCT, RFStation, Timer],
                   Field(discriminator="kind")]


class DeviceList(RootModel[list[Device]]):
    """A list of devices of any type (the device layer's JSON form; infinite limits and
    readings not taken yet are written as ``Infinity`` and ``NaN``)."""

    model_config = ConfigDict(ser_json_inf_nan="constants")


__all__ = [
    "BPM", "DCCT", "Device", "DeviceList", "EventRecord", "ExcitationFunction", "Exponential",
    "GenericValueModel", "Instant", "LimitError", "MagnetPowerSupply", "RFStation", "ResponseModel",
    "Timer", "Underdamped", "VirtualDevice", "excitation",
]
