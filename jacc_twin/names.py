"""The twin's variable names: one table (package data ``jacc_twin/data/devices.csv``) shared
by the devices, the LUME face and the control-system front ends (EPICS, ACNET).

Each row is one variable of one device:

- ``variable``: ``<DEVICE>:<FIELD>``, the LUME name; the EPICS PV is ``<prefix><variable>``
  (default prefix ``IOTA:``).
- ``device``, ``field``: the twin's device and the field of it the variable reads or sets.
- ``kind``: ``setting`` (read-write), ``reading`` (read-only scalar), ``waveform``
  (read-only array), ``derived`` (computed by the twin from other readings or its model).
- ``acnet``, ``acnet_property``: the ACNET-style device name (``N:`` prefix) and its DRF
  property (``SETTING`` or ``READING``).
- ``element``, ``parameter``: the lattice placement and the knob or field it drives or reads.
- ``unit``, ``low``, ``high`` (empty: unbounded), ``read_only``, ``description``.

``python -m jacc_twin.names`` rewrites the table from the embedded lattice.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import pathlib
from importlib import resources

__all__ = ["Variable", "variables", "lookup", "pv_name", "TABLE"]

TABLE = "devices.csv"
COLUMNS = ("variable", "device", "field", "kind", "acnet", "acnet_property", "element", "parameter",
           "unit", "low", "high", "read_only", "description")


@dataclasses.dataclass(frozen=True)
class Variable:
    """One row of the table (see the module docstring)."""

    variable: str
    device: str
    field: str
    kind: str
    acnet: str
    acnet_property: str
    element: str
    parameter: str
    unit: str
    low: float
    high: float
    read_only: bool
    description: str

    def pv(self, prefix: str = "IOTA:") -> str:
        return pv_name(self.variable, prefix)

    @property
    def value_range(self) -> tuple[float, float] | None:
        if math.isinf(self.low) and math.isinf(self.high):
            return None
        return (self.low, self.high)


def pv_name(variable: str, prefix: str = "IOTA:") -> str:
    """The EPICS PV of a variable: ``<prefix><DEVICE>:<FIELD>``."""
    return f"{prefix}{variable}"


def _row(d: dict) -> Variable:
    return Variable(variable=d["variable"], device=d["device"], field=d["field"], kind=d["kind"],
                    acnet=d["acnet"], acnet_property=d["acnet_property"], element=d["element"],
                    parameter=d["parameter"], unit=d["unit"],
                    low=float(d["low"]) if d["low"] else -math.inf,
                    high=float(d["high"]) if d["high"] else math.inf,
                    read_only=d["read_only"].strip().lower() == "true", description=d["description"])


@functools.lru_cache(maxsize=None)
def variables() -> dict[str, Variable]:
    """Every variable of the table, by name, in table order."""
    text = resources.files("jacc_twin").joinpath("data", TABLE).read_text()
    rows = [_row(d) for d in csv.DictReader(io.StringIO(text))]
    out = {r.variable: r for r in rows}
    if len(out) != len(rows):
        raise ValueError(f"{TABLE}: a variable name appears twice")
    return out


def lookup(name: str) -> Variable:
    """The row of a variable given by its name, PV name (``IOTA:...``) or ACNET name and
    property (``N:IHA1R.SETTING``; the property defaults to READING)."""
    table = variables()
    if name in table:
        return table[name]
    if name.startswith("IOTA:") and name[5:] in table:
        return table[name[5:]]
    acnet, _, prop = name.partition(".")
    prop = (prop or "READING").upper()
    for v in table.values():
        if v.acnet == acnet and v.acnet_property == prop:
            return v
    import difflib

    close = difflib.get_close_matches(name, list(table), n=3)
    raise KeyError(f"unknown twin variable {name!r}" + (f" (did you mean {close}?)" if close else "")
                   + f"; {len(table)} variables in jacc_twin/data/{TABLE}")


# ---------------------------------------------------------------------- building the table
def _rows_for_lattice() -> list[dict]:
    import jacc
    from jacc.calibrate.errors import quad_knobs

    from .devices import excitation

    lat, _ = jacc.lattices.iota()
    rows = []

    def add(variable, device, field, kind, acnet, prop, element, parameter, unit, low, high, desc):
        rows.append(dict(variable=variable, device=device, field=field, kind=kind, acnet=acnet,
                         acnet_property=prop, element=element, parameter=parameter, unit=unit,
                         low="" if low is None else repr(low), high="" if high is None else repr(high),
                         read_only=str(kind != "setting"), description=desc))

    cl = excitation("iota_corrector").current_limit
    for plane, field in (("H", "xangle"), ("V", "yangle")):
        for p in (p for p in lat.elements if p.element_name == "HVCorrector"):
            knob = next(k for k in lat.knobs if (p.name, field) in lat.knob_dependents(k))
            dev, tag = f"{plane}{p.name.upper()}", p.name.upper()[1:]
            what = "horizontal" if plane == "H" else "vertical"
            add(f"{dev}:SETTING", dev, "setpoint", "setting", f"N:I{plane}{tag}", "SETTING", p.key, knob,
                "A", -cl, cl, f"{what} corrector {p.name} current setting")
            add(f"{dev}:READING", dev, "value", "reading", f"N:I{plane}{tag}", "READING", p.key, knob,
                "A", None, None, f"{what} corrector {p.name} current readback")
    ql = excitation("iota_quadrupole").current_limit
    for v in quad_knobs(lat):
        dev = v.name.upper()
        mags = " and ".join(el for el, _ in lat.knob_dependents(v.name))
        add(f"{dev}:SETTING", dev, "setpoint", "setting", f"N:I{dev}", "SETTING", "", v.name, "A", -ql, ql,
            f"quadrupole supply {v.name} ({mags}) current setting")
        add(f"{dev}:READING", dev, "value", "reading", f"N:I{dev}", "READING", "", v.name, "A", None, None,
            f"quadrupole supply {v.name} current readback")
    for p in (p for p in lat.elements if p.element_name == "Monitor"):
        dev, tag = p.name.upper(), p.name.upper()[4:]
        for axis, f in (("X", "x"), ("Y", "y")):
            hv = "H" if axis == "X" else "V"
            add(f"{dev}:{axis}", dev, f, "reading", f"N:IB{tag}{hv}", "READING", p.key, "", "m", None, None,
                f"BPM {p.name} {f} position, 10 Hz")
            add(f"{dev}:{axis}_1HZ", dev, f"{f}_1hz", "reading", f"N:IB{tag}{hv}S", "READING", p.key, "", "m",
                None, None, f"BPM {p.name} {f} position, 1 Hz mean")
            add(f"{dev}:TBT_{axis}", dev, f"tbt_{f}", "waveform", f"N:IB{tag}{hv}T", "READING", p.key, "", "m",
                None, None, f"BPM {p.name} {f} turn by turn")
    rows += _rows_other()
    return rows


def _rows_other() -> list[dict]:
    spec = [
        ("DCCT:CURRENT", "DCCT", "current", "reading", "N:IBEAM", "READING", "", "", "A", None, None,
         "stored beam current (DC current transformer)"),
        ("RF:VOLT_SETTING", "RF", "voltage.setpoint", "setting", "N:IRFV", "SETTING", "rfc:1", "rfc.voltage", "V",
         0.0, 2000.0, "RF cavity voltage setting"),
        ("RF:VOLT_READING", "RF", "voltage.value", "reading", "N:IRFV", "READING", "rfc:1", "rfc.voltage", "V",
         None, None, "RF cavity voltage readback"),
        ("RF:PHASE_SETTING", "RF", "phase.setpoint", "setting", "N:IRFP", "SETTING", "rfc:1", "rfc.lag", "deg",
         -180.0, 180.0, "RF phase setting (lag = phase / 360)"),
        ("RF:PHASE_READING", "RF", "phase.value", "reading", "N:IRFP", "READING", "rfc:1", "rfc.lag", "deg",
         None, None, "RF phase readback"),
        ("RF:FREQ_SETTING", "RF", "frequency.setpoint", "setting", "N:IRFF", "SETTING", "rfc:1", "rfc.frequency",
         "Hz", -2000.0, 2000.0, "RF frequency offset from the design h f_rev setting (moves the orbit by dispersion)"),
        ("RF:FREQ_READING", "RF", "frequency.value", "reading", "N:IRFF", "READING", "rfc:1", "rfc.frequency",
         "Hz", None, None, "RF frequency offset readback"),
        ("RF:DELTA", "RF", "delta", "reading", "N:IRFDP", "READING", "", "", "", None, None,
         "beam momentum offset dp/p set by the RF frequency, -(df/f)/eta"),
        ("TIMER:COUNT", "TIMER", "count", "reading", "N:ITIMER", "READING", "", "", "", None, None,
         "1 Hz heartbeat count"),
        ("ORBIT:RMS_X", "ORBIT", "rms_x", "derived", "N:IORBRX", "READING", "", "", "m", None, None,
         "rms of the 10 Hz horizontal BPM readings"),
        ("ORBIT:RMS_Y", "ORBIT", "rms_y", "derived", "N:IORBRY", "READING", "", "", "m", None, None,
         "rms of the 10 Hz vertical BPM readings"),
        ("TUNE:QX", "TUNE", "qx", "derived", "N:IQX", "READING", "", "", "", None, None,
         "horizontal tune of the machine's model (jacc.twiss)"),
        ("TUNE:QY", "TUNE", "qy", "derived", "N:IQY", "READING", "", "", "", None, None,
         "vertical tune of the machine's model (jacc.twiss)"),
        ("TUNE:DQX", "TUNE", "dqx", "derived", "N:IDQX", "READING", "", "", "", None, None,
         "horizontal chromaticity dQx/d(dp/p) of the machine's model"),
        ("TUNE:DQY", "TUNE", "dqy", "derived", "N:IDQY", "READING", "", "", "", None, None,
         "vertical chromaticity dQy/d(dp/p) of the machine's model"),
        ("TUNE:QS", "TUNE", "qs", "derived", "N:IQS", "READING", "", "", "", None, None,
         "synchrotron tune of the RF voltage and phase (slip factor from jacc.twiss)"),
    ]
    keys = ("variable", "device", "field", "kind", "acnet", "acnet_property", "element", "parameter",
            "unit", "low", "high", "description")
    out = []
    for row in spec:
        d = dict(zip(keys, row))
        d["low"] = "" if d["low"] is None else repr(d["low"])
        d["high"] = "" if d["high"] is None else repr(d["high"])
        d["read_only"] = str(d["kind"] != "setting")
        out.append(d)
    return out


def write_table(path: pathlib.Path | None = None) -> pathlib.Path:
    """Write the table built from the embedded lattice (default: the package data file)."""
    path = pathlib.Path(path or pathlib.Path(__file__).parent / "data" / TABLE)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(_rows_for_lattice())
    path.write_text(buf.getvalue())
    variables.cache_clear()
    return path


if __name__ == "__main__":
    print(f"wrote {write_table()}")
