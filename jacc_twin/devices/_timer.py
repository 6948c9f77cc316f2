"""A timer: counts ticks at a fixed rate (the control system's heartbeat)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import EventRecord, VirtualDevice

__all__ = ["Timer"]


class Timer(VirtualDevice):
    """Emits its tick count on stream ``tick`` at ``rate`` [Hz] (default 1 Hz).

    Attributes:
        rate: tick rate [Hz]; count: ticks so far.
    """

    kind: Literal["timer"] = "timer"
    rate: float = Field(default=1.0, gt=0)
    count: int = 0

    def rates(self) -> dict[str, float]:
        return {"tick": self.rate}

    def emit(self, stream: str, t: float) -> EventRecord | None:
        self.count += 1
        return EventRecord(t, self.name, stream, self.count)
