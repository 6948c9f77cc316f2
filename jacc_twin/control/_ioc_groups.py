"""caproto PV groups of the twin's IOC: one `PVGroup` class per device, built from the PV
catalogue (`jacc_twin.control._pvs`), with units, limits and record types (``ao`` for
settings, ``ai`` for readings, ``waveform``, ``mbbi`` for status, ``longout`` for commands),
so that record fields such as ``.HOPR``, ``.LOPR``, ``.HIHI``, ``.HIGH``, ``.LOW``,
``.LOLO``, ``.EGU`` answer too.
"""

from __future__ import annotations

import math

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from ._pvs import STATUS_STRINGS, PVInfo

__all__ = ["device_group_class"]

_RECORD = {"setting": "ao", "reading": "ai", "derived": "ai", "waveform": "waveform", "orbit": "waveform",
           "status": "mbbi", "command": "longout"}


async def _put(group, instance, value):
    """Every write of a read-write PV goes to the IOC, which checks it and writes the twin."""
    return await group.ioc.put(instance, value)


def _property(info: PVInfo) -> pvproperty:
    kw = dict(name=info.name.split(":", 1)[1], doc=info.description, read_only=info.read_only,
              alarm_group=info.name, record=_RECORD[info.kind])
    if info.dtype == "enum":
        return pvproperty(dtype=ChannelType.ENUM, enum_strings=STATUS_STRINGS, value=STATUS_STRINGS[0], **kw)
    if not info.read_only:
        kw["put"] = _put
    if info.max_length > 1:
        return pvproperty(dtype=float, value=[], max_length=info.max_length, units=info.unit, **kw)
    if info.dtype == "int":
        return pvproperty(dtype=int, value=0, units=info.unit, **kw, **info.limits)
    value = info.low if not math.isnan(info.low) and info.low > 0 else 0.0
    return pvproperty(dtype=float, value=value, units=info.unit, precision=9, **kw, **info.limits)


def device_group_class(device: str, infos: list[PVInfo]) -> type[PVGroup]:
    """A `PVGroup` subclass with one pvproperty per PV of ``device`` (attributes: the field
    in lower case); an instance's ``ioc`` (set by the IOC) receives the writes."""
    props = {info.name.split(":", 1)[1].lower(): _property(info) for info in infos}
    props["__doc__"] = f"The PVs of the twin's device {device}."
    return type(f"{device.title().replace('_', '')}PVs", (PVGroup,), props)
