"""The ACNET front end of the twin: Fermilab's DRF2 request format and a DPM-like adapter.

- `parse` (DRF2 text -> `Request`: ``device``, ``property``, ``range``, ``field``,
  ``event``, ``canonical()``, ``pretty_print()``).
- `DPMAdapter` (requests served by a twin: reads, settings within limits, periodic and
  clock-event streams as `Subscription`), `DoubleDevice` (one request read and set as a float).
"""

from ._device import DoubleDevice
from ._dpm import CLOCK_EVENTS, DPMAdapter, Reading, Subscription
from ._parse import parse, parse_device, parse_event
from ._request import (ArrayRange, ByteRange, ClockEvent, DefaultEvent, ImmediateEvent, NeverEvent,
                       PeriodicEvent, Request, StateEvent, TimeFreq)

__all__ = ["CLOCK_EVENTS", "DPMAdapter", "DoubleDevice", "Reading", "Subscription", "ArrayRange", "ByteRange", "ClockEvent", "DefaultEvent", "ImmediateEvent", "NeverEvent",
           "PeriodicEvent", "Request", "StateEvent", "TimeFreq", "parse", "parse_device", "parse_event"]
