"""The parts of a DRF2 request (device, property, range, field, event) and its canonical text.

Every part is a frozen dataclass: two requests that mean the same thing compare equal, and
``parse(r.canonical()) == r``.
"""

from __future__ import annotations

import dataclasses

__all__ = ["ArrayRange", "ByteRange", "TimeFreq", "DefaultEvent", "ImmediateEvent", "NeverEvent",
           "PeriodicEvent", "ClockEvent", "StateEvent", "Request", "PROPERTIES", "FIELDS",
           "DEFAULT_FIELD", "QUALIFIERS"]

# qualifier character of a device name -> the property it selects
QUALIFIERS = {":": "READING", "?": "READING", "_": "SETTING", "|": "STATUS", "&": "CONTROL",
              "@": "ANALOG", "$": "DIGITAL", "~": "DESCRIPTION"}

# property -> its names (canonical first); matched case-insensitively
PROPERTIES = {
    "READING": ("READING", "READ", "PRREAD"),
    "SETTING": ("SETTING", "SET", "PRSET"),
    "STATUS": ("STATUS", "BASIC_STATUS", "STS", "PRBSTS"),
    "CONTROL": ("CONTROL", "BASIC_CONTROL", "CTRL", "PRBCTL"),
    "ANALOG": ("ANALOG", "ANALOG_ALARM", "AA", "PRANAB"),
    "DIGITAL": ("DIGITAL", "DIGITAL_ALARM", "DA", "PRDABL"),
    "DESCRIPTION": ("DESCRIPTION", "DESC", "PRDESC"),
}

_ALARM_COMMON = ("RAW", "ALL", "TEXT", "ALARM_ENABLE", "ALARM_STATUS", "TRIES_NEEDED", "TRIES_NOW",
                 "ALARM_FTD", "ABORT", "ABORT_INHIBIT", "FLAGS")
# property -> {field name or alias: canonical field}; CONTROL and DESCRIPTION have no fields
FIELDS = {
    "READING": {"RAW": "RAW", "PRIMARY": "PRIMARY", "VOLTS": "PRIMARY", "SCALED": "SCALED", "COMMON": "SCALED"},
    "STATUS": {f: f for f in ("RAW", "ALL", "TEXT", "EXTENDED_TEXT", "ON", "READY", "REMOTE", "POSITIVE", "RAMP")},
    "ANALOG": {f: f for f in _ALARM_COMMON + ("MIN", "MAX", "NOM", "TOL", "RAW_MIN", "RAW_MAX", "RAW_NOM",
                                               "RAW_TOL")},
    "DIGITAL": {f: f for f in _ALARM_COMMON + ("NOM", "MASK", "RAW_NOM", "RAW_MASK")},
    "CONTROL": {},
    "DESCRIPTION": {},
}
FIELDS["SETTING"] = FIELDS["READING"]
DEFAULT_FIELD = {"READING": "SCALED", "SETTING": "SCALED", "STATUS": "ALL", "ANALOG": "ALL",
                 "DIGITAL": "ALL", "CONTROL": None, "DESCRIPTION": None}


@dataclasses.dataclass(frozen=True)
class ArrayRange:
    """Array elements ``start`` to ``end`` inclusive (``end=None``: to the last)."""

    start: int = 0
    end: int | None = None

    def canonical(self) -> str:
        if self.end is None:
            return "[]" if self.start == 0 else f"[{self.start}:]"
        return f"[{self.start}]" if self.end == self.start else f"[{self.start}:{self.end}]"

    def describe(self) -> str:
        if self.end is None:
            return "the whole array" if self.start == 0 else f"elements {self.start} to the last"
        return f"element {self.start}" if self.end == self.start else f"elements {self.start} to {self.end}"


@dataclasses.dataclass(frozen=True)
class ByteRange:
    """``length`` bytes (None: to the end) from byte ``offset``."""

    offset: int
    length: int | None = None

    def canonical(self) -> str:
        return f"{{{self.offset}}}" if self.length is None else f"{{{self.offset}:{self.length}}}"

    def describe(self) -> str:
        n = "to the end" if self.length is None else f"{self.length} bytes"
        return f"bytes from offset {self.offset}, {n}"


@dataclasses.dataclass(frozen=True)
class TimeFreq:
    """A time (``micros`` [us]) or a frequency (``hertz`` [Hz]); exactly one is set."""

    micros: int | None = None
    hertz: int | None = None

    @property
    def seconds(self) -> float:
        """The time [s] (a frequency: its period)."""
        return self.micros * 1e-6 if self.micros is not None else 1.0 / self.hertz

    def canonical(self) -> str:
        if self.hertz is not None:
            return f"{self.hertz // 1000}K" if self.hertz and self.hertz % 1000 == 0 else f"{self.hertz}H"
        if self.micros == 0:
            return "0"
        for unit, scale in (("S", 1_000_000), ("M", 1000)):
            if self.micros % scale == 0:
                return f"{self.micros // scale}{unit}"
        return f"{self.micros}U"

    def describe(self) -> str:
        return f"{self.hertz} Hz" if self.hertz is not None else f"{self.micros * 1e-6:g} s"


@dataclasses.dataclass(frozen=True)
class DefaultEvent:
    """No event given: the data source's default (an immediate reading)."""

    def canonical(self) -> str:
        return ""

    def describe(self) -> str:
        return "default (one immediate reading)"


@dataclasses.dataclass(frozen=True)
class ImmediateEvent:
    def canonical(self) -> str:
        return "I"

    def describe(self) -> str:
        return "immediate: one reading now"


@dataclasses.dataclass(frozen=True)
class NeverEvent:
    def canonical(self) -> str:
        return "N"

    def describe(self) -> str:
        return "never (settings only, no reading)"


@dataclasses.dataclass(frozen=True)
class PeriodicEvent:
    """Periodic readings every ``period``; ``immediate``: one at once too; ``continuous``
    False for ``@Q`` (readings only on change)."""

    period: TimeFreq = TimeFreq(micros=1_000_000)
    immediate: bool = True
    continuous: bool = True

    def canonical(self) -> str:
        return f"{'P' if self.continuous else 'Q'},{self.period.canonical()},{str(self.immediate).upper()}"

    def describe(self) -> str:
        kind = "periodic" if self.continuous else "periodic, on change only"
        return f"{kind}, every {self.period.describe()}" + (", first reading at once" if self.immediate else "")


@dataclasses.dataclass(frozen=True)
class ClockEvent:
    """Clock event ``number`` (16 bits) of type ``H`` (hardware), ``S`` (software) or ``E``
    (either), readings ``delay`` after it."""

    number: int
    type: str = "E"
    delay: TimeFreq = TimeFreq(micros=0)

    def canonical(self) -> str:
        return f"E,{self.number:X},{self.type},{self.delay.canonical()}"

    def describe(self) -> str:
        kind = {"H": "hardware", "S": "software", "E": "hardware or software"}[self.type]
        return f"clock event 0x{self.number:X} ({kind}), delay {self.delay.describe()}"


@dataclasses.dataclass(frozen=True)
class StateEvent:
    """Readings when ``device`` (a state device) takes a value that compares to ``value``
    by ``op`` (``= != * > < <= >=``; ``*`` any change), ``delay`` after it."""

    device: str
    value: int
    delay: TimeFreq
    op: str

    def canonical(self) -> str:
        return f"S,{self.device},{self.value},{self.delay.canonical()},{self.op}"

    def describe(self) -> str:
        cond = "any change" if self.op == "*" else f"value {self.op} {self.value}"
        return f"state event of {self.device} ({cond}), delay {self.delay.describe()}"


Event = DefaultEvent | ImmediateEvent | NeverEvent | PeriodicEvent | ClockEvent | StateEvent
Range = ArrayRange | ByteRange


@dataclasses.dataclass(frozen=True)
class Request:
    """A parsed DRF2 request (`jacc_twin.control.acnet.parse`).

    Attributes:
        device: canonical device name (qualifier ``:``), e.g. ``"N:IHA1R"``.
        property: ``READING``, ``SETTING``, ``STATUS``, ``CONTROL``, ``ANALOG``, ``DIGITAL``
            or ``DESCRIPTION``.
        range: `ArrayRange`, `ByteRange` or None (the default range).
        field: the canonical field, or None where the property has none.
        event: the event (`DefaultEvent` when none was given).
    """

    device: str
    property: str
    range: Range | None = None
    field: str | None = None
    event: Event = DefaultEvent()

    def canonical(self) -> str:
        """Canonical DRF2 text: device, property, range, field, event."""
        out = f"{self.device}.{self.property}"
        if self.range is not None:
            out += self.range.canonical()
        if self.field is not None:
            out += f".{self.field}"
        ev = self.event.canonical()
        return out + (f"@{ev}" if ev else "")

    def pretty_print(self) -> str:
        """The request in words, one part a line."""
        lines = [f"device:   {self.device}", f"property: {self.property}",
                 f"range:    {self.range.describe() if self.range is not None else 'default'}",
                 f"field:    {self.field if self.field is not None else '(none)'}",
                 f"event:    {self.event.describe()}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.canonical()
