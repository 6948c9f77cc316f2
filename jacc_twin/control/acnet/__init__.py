"""The ACNET front end of the twin: Fermilab's DRF2 request format and a DPM-like adapter.

- `parse` (DRF2 text -> `Request`: ``device``, ``property``, ``range``, ``field``,
  ``event``, ``canonical()``, ``pretty_print()``).
"""

from ._parse import parse, parse_device, parse_event
from ._request import (ArrayRange, ByteRange, ClockEvent, DefaultEvent, ImmediateEvent, NeverEvent,
                       PeriodicEvent, Request, StateEvent, TimeFreq)

__all__ = ["ArrayRange", "ByteRange", "ClockEvent", "DefaultEvent", "ImmediateEvent", "NeverEvent",
           "PeriodicEvent", "Request", "StateEvent", "TimeFreq", "parse", "parse_device", "parse_event"]
