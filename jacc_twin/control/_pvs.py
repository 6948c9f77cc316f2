"""Every PV the twin's IOC serves, from the names table (`jacc_twin.names`), without EPICS.

PV names are ``<prefix><DEVICE>:<FIELD>``: each variable of the table (settings read-write,
readings, turn-by-turn waveforms, values the twin derives: orbit rms, tunes and
chromaticities), plus what the IOC adds: a ``STATUS`` of each device with a setting, the
orbit of every BPM in one waveform per plane (``ORBIT:X``, ``ORBIT:Y``, their positions
``ORBIT:S``) and ``TBT:ACQUIRE`` (write a number of turns: kick, track and fill the
turn-by-turn waveforms).
"""

from __future__ import annotations

import dataclasses
import math

from ..names import variables

__all__ = ["PVInfo", "catalogue", "DEFAULT_PREFIX", "TBT_MAX_TURNS", "STATUS_STRINGS"]

DEFAULT_PREFIX = "IOTA:"
TBT_MAX_TURNS = 8192
STATUS_STRINGS = ("READY", "MOVING")


@dataclasses.dataclass(frozen=True)
class PVInfo:
    """One PV (without its prefix).

    Attributes:
        name: ``<DEVICE>:<FIELD>``; device: the twin's device (or ``ORBIT``, ``TBT``).
        kind: ``setting``, ``reading``, ``waveform``, ``derived`` (from the table), ``status``,
            ``orbit`` or ``command`` (the IOC's own).
        variable: the twin variable it serves (None for the IOC's own PVs).
        dtype: ``float``, ``int`` or ``enum``; unit; description.
        low, high: control and display limits (NaN: none); alarm limits follow from them.
        read_only; max_length: 1 for scalars, the array capacity of waveforms.
    """

    name: str
    device: str
    kind: str
    variable: str | None
    dtype: str
    unit: str
    low: float
    high: float
    read_only: bool
    max_length: int
    description: str

    def pv(self, prefix: str = DEFAULT_PREFIX) -> str:
        return f"{prefix}{self.name}"

    @property
    def type_name(self) -> str:
        """The EPICS type as a client sees it (``double``, ``long``, ``enum``, ``double[n]``)."""
        base = {"float": "double", "int": "long", "enum": "enum"}[self.dtype]
        return f"{base}[{self.max_length}]" if self.max_length > 1 else base

    @property
    def limits(self) -> dict:
        """Control, display and alarm limits (caproto's metadata names) when it has a range;
        alarms: HIHI/LOLO at the range's ends, HIGH/LOW 5 % inside."""
        if math.isnan(self.low) or math.isnan(self.high):
            return {}
        margin = 0.05 * (self.high - self.low)
        return dict(lower_ctrl_limit=self.low, upper_ctrl_limit=self.high, lower_disp_limit=self.low,
                    upper_disp_limit=self.high, lower_alarm_limit=self.low, upper_alarm_limit=self.high,
                    lower_warning_limit=self.low + margin, upper_warning_limit=self.high - margin)


def _setting_range(table) -> dict:
    """(device, channel) -> (low, high) of every setting (a readback shows its setting's range)."""
    out = {}
    for v in table.values():
        if v.kind == "setting":
            out[(v.device, v.field.split(".")[0] if "." in v.field else "")] = (v.low, v.high)
    return out


def catalogue() -> list[PVInfo]:
    """Every PV served, in table order, then the IOC's own."""
    table = variables()
    ranges = _setting_range(table)
    out = []
    n_bpm = len({v.device for v in table.values() if v.kind == "waveform"})
    for v in table.values():
        field = v.variable.split(":", 1)[1]
        if v.kind == "setting":
            lo, hi = v.low, v.high
        else:
            lo, hi = ranges.get((v.device, v.field.split(".")[0] if "." in v.field else ""), (math.nan, math.nan))
        lo, hi = (math.nan, math.nan) if math.isinf(lo) or math.isinf(hi) else (lo, hi)
        dtype = "int" if v.variable == "TIMER:COUNT" else "float"
        out.append(PVInfo(v.variable, v.device, v.kind, v.variable, dtype, v.unit, lo, hi, v.read_only,
                          TBT_MAX_TURNS if v.kind == "waveform" else 1, v.description))
        if field not in ("SETTING", "VOLT_SETTING"):
            continue  # one STATUS per device with settings, after its first setting
        out.append(PVInfo(f"{v.device}:STATUS", v.device, "status", None, "enum", "", math.nan, math.nan,
                          True, 1, f"{v.device} status: {' or '.join(STATUS_STRINGS)} (following a step)"))
    for plane in ("X", "Y"):
        out.append(PVInfo(f"ORBIT:{plane}", "ORBIT", "orbit", None, "float", "m", math.nan, math.nan, True, n_bpm,
                          f"10 Hz {plane.lower()} reading of every BPM, in ring order"))
    out.append(PVInfo("ORBIT:S", "ORBIT", "orbit", None, "float", "m", math.nan, math.nan, True, n_bpm,
                      "s position of every BPM, in ring order"))
    out.append(PVInfo("TBT:ACQUIRE", "TBT", "command", None, "int", "turns", 0.0, float(TBT_MAX_TURNS), False, 1,
                      "write a number of turns: kick the beam and fill the BPMs' turn-by-turn waveforms"))
    return out


def table_text(prefix: str = DEFAULT_PREFIX) -> str:
    """``jacc-twin pvs``: one PV a line with type, units and access."""
    rows = catalogue()
    width = max(len(r.pv(prefix)) for r in rows)
    return "\n".join(f"{r.pv(prefix):<{width}}  {r.type_name:<12} {r.unit or '-':<6} "
                     f"{'read-only' if r.read_only else 'read-write'}" for r in rows)
