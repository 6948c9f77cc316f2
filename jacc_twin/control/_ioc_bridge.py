"""From the twin's events to PV updates: which event refreshes which PV.

A listener on the twin's event loop (it runs on the loop's thread) maps each event record to
the PVs it refreshes, reads their values from the twin there, and hands ``(PV, value)``
pairs to the IOC's asyncio loop. The orbit waveforms and the orbit rms go out once per 10 Hz
tick, when every BPM has read; tunes and chromaticities at the model tick after a setting
changed (computed off the loop's thread).
"""

from __future__ import annotations

import collections
import threading
from typing import Callable

import numpy as np

from ..devices import BPM, MagnetPowerSupply, RFStation
from ..names import variables

__all__ = ["TwinBridge"]

# the field of a variable (names table) -> the stream of its device whose events refresh it
_STREAM_OF_FIELD = {"x": "orbit_10hz", "y": "orbit_10hz", "x_1hz": "orbit_1hz", "y_1hz": "orbit_1hz",
                    "tbt_x": "tbt", "tbt_y": "tbt", "value": "readback", "voltage.value": "voltage",
                    "phase.value": "phase", "frequency.value": "frequency", "current": "current",
                    "count": "tick"}


class TwinBridge:
    """Calls ``post(pv_name, value)`` (without the prefix) for every PV an event refreshes."""

    def __init__(self, twin, post: Callable[[str, object], None]):
        self.twin, self.post = twin, post
        self.by_stream: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
        for v in variables().values():
            stream = _STREAM_OF_FIELD.get(v.field)
            if stream is not None and v.device in twin.devices:
                self.by_stream[(v.device, stream)].append(v.variable)
        self.settings = {d: [v.variable for v in variables().values() if v.device == d and v.kind == "setting"]
                         for d, dev in twin.devices.items() if isinstance(dev, (MagnetPowerSupply, RFStation))}
        self.bpms = [d.name for d in twin.devices.values() if isinstance(d, BPM)]
        self._orbit_seen: set = set()
        self._status: dict[str, str] = {}
        self._optics_key = None
        self._last_setting: dict[str, float] = {}
        self._optics_guard = threading.Lock()
        self._optics_busy = False
        self._optics_vec = None
        self.on_tick: list[Callable[[], None]] = []

    def attach(self) -> None:
        self.twin.loop.listeners.append(self.on_record)

    def detach(self) -> None:
        if self.on_record in self.twin.loop.listeners:
            self.twin.loop.listeners.remove(self.on_record)

    def initial(self) -> None:
        """Post every served variable's current value (at start)."""
        for v in variables().values():
            value = self.twin.read(v.variable)
            if v.kind == "setting":
                self._last_setting[v.variable] = value
            if v.kind != "waveform" or len(value):
                self.post(v.variable, value)
        self.post_orbit()
        self.post("ORBIT:S", np.asarray(self.twin.ring.bpm_s, float))
        for d in self.settings:
            self.post_status(d, self.twin.t)

    def on_record(self, rec) -> None:
        for name in self.by_stream.get((rec.device, rec.stream), ()):
            self.post(name, self.twin.read(name))
        if rec.device in self.settings:
            self.post_status(rec.device, rec.t)
            for name in self.settings[rec.device]:  # settings written by other clients of the twin
                value = self.twin.read(name)
                if self._last_setting.get(name) != value:
                    self._last_setting[name] = value
                    self.post(name, value)
        elif rec.stream == "orbit_10hz":
            self._orbit_seen.add(rec.device)
            if len(self._orbit_seen) == len(self.bpms):
                self._orbit_seen.clear()
                self.post_orbit()
        elif rec.device == "MODEL" and rec.stream == "tick":
            self.post_optics()
            for f in self.on_tick:
                f()

    def post_status(self, device: str, t: float) -> None:
        dev = self.twin.devices[device]
        chans = [dev.voltage, dev.phase, dev.frequency] if isinstance(dev, RFStation) else [dev]
        status = "MOVING" if any(c.moving(t) for c in chans) else "READY"
        if self._status.get(device) != status:
            self._status[device] = status
            self.post(f"{device}:STATUS", status)

    def post_orbit(self) -> None:
        x, y = self.twin.bpm_readings("orbit_10hz")
        self.post("ORBIT:X", np.nan_to_num(x))
        self.post("ORBIT:Y", np.nan_to_num(y))
        self.post("ORBIT:RMS_X", self.twin.read("ORBIT:RMS_X"))
        self.post("ORBIT:RMS_Y", self.twin.read("ORBIT:RMS_Y"))

    def post_optics(self) -> None:
        """Tunes and chromaticities of a new setting, computed on a thread of their own (a
        Twiss takes tens of ms: on the loop's thread it would delay the BPMs' events)."""
        key = self.twin.vector().tobytes()
        if key == self._optics_key:
            return
        self._optics_key = key
        self._optics_vec = self.twin.vector()
        with self._optics_guard:
            if self._optics_busy:
                return  # the running computation picks up the newest setting when done
            self._optics_busy = True
        threading.Thread(target=self._optics_worker, name="jacc-twin-optics", daemon=True).start()

    def _optics_worker(self) -> None:
        done = None
        while True:
            with self._optics_guard:
                vec = self._optics_vec
                if done is not None and np.array_equal(vec, done):
                    self._optics_busy = False
                    return
            optics = self.twin.ring.optics(vec)
            for name in ("qx", "qy", "dqx", "dqy"):
                self.post(f"TUNE:{name.upper()}", optics[name])
            done = vec
