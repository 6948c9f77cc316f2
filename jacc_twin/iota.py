"""`IotaTwin`: the IOTA ring as a machine that an operator, an optimiser or an agent drives.

The twin is the embedded IOTA lattice (`jacc.lattices.iota`) with, optionally, seeded
faults (`jacc_twin.faults`: the machine), its devices (`jacc_twin.iota_devices`: corrector
and quadrupole supplies, 21 BPMs, DCCT, RF station, timer) on the event loop
(`jacc_twin.loop`), and the ring's physics as a `jacc_twin.Pipeline` of three stages
(`jacc_twin.models.RingOrbitModel` ``"orbit"``, `RingTurnByTurnModel` ``"tbt"``,
`RingOpticsModel` ``"optics"``). Devices bind to a stage by name (their ``segment``) and
receive its output ports after each run of it; the supplies' setpoints and the RF
frequency flow back as the stages' inputs (``parameters``, ``delta``). Variables are named
by the table of `jacc_twin.names`.

Writes: ``write({variable: value, ...})`` is one atomic batch: every value is checked
against its device's limits first, then all are applied and the machine solved once; a
setting without a closed orbit, with unstable optics or losing the beam is rolled back as
a whole and refused with `UnstableSettingError`. Policies: ``"synchronous"`` (the BPM
readings reflect the write when ``write`` returns) and ``"batched"`` (writes are queued and
solved at the next model tick; a refused batch is recorded as a ``write_refused`` event and
kept in ``refused``).
"""

from __future__ import annotations

import json
import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .devices import BPM, DeviceList, EventRecord, MagnetPowerSupply, RFStation, VirtualDevice
from .devices._response import Exponential, Instant, Underdamped
from .faults import FaultSpec, draw_faults, no_faults
from .iota_devices import DeviceOptions, build_devices
from .loop import EventLoop
from .models._ring import RingOpticsModel, RingOrbitModel, RingTurnByTurnModel
from .names import lookup
from .ring import RingPhysics, solution_from

__all__ = ["IotaTwin", "TwinConfig", "UnstableSettingError"]


class UnstableSettingError(ValueError):
    """A setting for which the machine has no closed orbit, unstable optics, or loses the beam."""


class TwinConfig(BaseModel):
    """What builds an `IotaTwin` (with the devices' JSON, all that a twin's JSON holds)."""

    model_config = ConfigDict(extra="forbid")

    species: Literal["electron", "proton"] = "electron"
    errors_seed: int | None = None
    faults: FaultSpec = Field(default_factory=FaultSpec)
    seed: int = 0
    policy: Literal["synchronous", "batched"] = "synchronous"
    model_rate: float = Field(default=10.0, gt=0)
    bpm_noise: float = Field(default=2e-6, ge=0)
    bpm_noise_tbt: float = Field(default=1e-5, ge=0)
    supply_noise: float = Field(default=1e-4, ge=0)
    supply_response: Instant | Exponential | Underdamped = Field(default_factory=Instant, discriminator="kind")
    t: float = 0.0


class _ModelTick(VirtualDevice):
    """The twin's model tick: applies queued writes and follows moving supplies."""

    kind: Literal["model_tick"] = "model_tick"
    rate: float = 10.0
    _twin: "IotaTwin" = PrivateAttr(default=None)

    def rates(self) -> dict[str, float]:
        return {"tick": self.rate}

    def on_event(self, t: float) -> list[EventRecord]:
        self.ticks["tick"] = self._tick("tick") + 1
        return self._twin._tick(t)


class IotaTwin:
    """The IOTA digital twin.

    Args:
        species: ``"electron"`` (150 MeV) or ``"proton"`` (2.5 MeV).
        errors_seed: None (the machine is its design) or the seed of its faults.
        faults: `FaultSpec` rms values of the faults.
        seed: seed of the devices' noise.
        policy: ``"synchronous"`` or ``"batched"`` (see the module docstring).
        bpm_noise, bpm_noise_tbt: BPM noise per orbit reading and per turn [m].
        supply_noise: supply readback noise [A]; supply_response: response model of every supply.
        clock, speed: the event loop's clock (``"simulated"`` or ``"wall"``) and pace.
        record: keep every event record (False: count them only).
        devices: devices to use instead of building them (a twin's JSON).

    Attributes:
        ring: `RingPhysics` (shared by the twins of a species); devices: by name; loop: `EventLoop`.
        solution: the current closed orbit (`OrbitSolution`); n_solves: machine solves so far.
    """

    def __init__(self, species: str = "electron", errors_seed: int | None = None, *, faults=None,
                 seed: int = 0, policy: str = "synchronous", bpm_noise: float = 2e-6,
                 bpm_noise_tbt: float = 1e-5, supply_noise: float = 1e-4, supply_response=None,
                 model_rate: float = 10.0, clock: str = "simulated", speed: float = 1.0, record: bool = True,
                 devices=None, t0: float = 0.0):
        self.config = TwinConfig(species=species, errors_seed=errors_seed, faults=faults or FaultSpec(), seed=seed,
                                 policy=policy, model_rate=model_rate, bpm_noise=bpm_noise,
                                 bpm_noise_tbt=bpm_noise_tbt, supply_noise=supply_noise,
                                 supply_response=supply_response or Instant(), t=t0)
        self.ring = RingPhysics.shared(species)
        f = no_faults(self.ring) if errors_seed is None else draw_faults(self.ring, self.config.faults, errors_seed)
        self.faults = f
        if devices is None:
            opts = DeviceOptions(seed=seed, bpm_noise=bpm_noise, bpm_noise_tbt=bpm_noise_tbt,
                                 supply_noise=supply_noise, supply_response=self.config.supply_response)
            devices = build_devices(self.ring, f, opts)
        self.devices: dict[str, VirtualDevice] = {d.name: d for d in devices}
        self._fixed = self.ring.base.copy()
        for k, v in f.misalignment.items():
            self._fixed[self.ring.index[k]] = v
        self._supplies = [d for d in devices if isinstance(d, MagnetPowerSupply)]
        self._supply_index = np.array([self.ring.index[d.parameter] for d in self._supplies])
        self._supply_index_quads = np.array([self.ring.index[k] for k in self.ring.quad_knobs])
        self._bpms = [d for d in devices if isinstance(d, BPM)]
        self._rf = next((d for d in devices if isinstance(d, RFStation)), None)
        self._initial = {d.name: d.snapshot() for d in devices if isinstance(d, (MagnetPowerSupply, RFStation))}
        from .pipeline import Pipeline

        self.pipeline = Pipeline(name="iota_twin", models=[
            RingOrbitModel(name="orbit", species=species), RingTurnByTurnModel(name="tbt", species=species),
            RingOpticsModel(name="optics", species=species)])
        self.stages = {m.name: m for m in self.pipeline.models}
        self.bindings: dict[str, list[VirtualDevice]] = {name: [] for name in self.stages}
        for d in devices:
            for seg in d.segments():
                if seg in self.bindings:
                    self.bindings[seg].append(d)
        # the devices that take outputs (the supplies only feed the stages' inputs)
        self._receivers = {k: [d for d in v if type(d).receive is not VirtualDevice.receive]
                           for k, v in self.bindings.items()}
        self._monitor_index = {k: i for i, k in enumerate(self.ring.bpms)}
        self._slip = (None, None)
        self.pending: dict = {}
        self.refused: list = []
        self.n_solves = 0
        self.solution = None
        self._optics = (None, None, None)
        self.delta = 0.0
        self.tbt = None
        self.loop = EventLoop(t0=t0, clock=clock, speed=speed, record=record)
        for d in devices:
            d.restart(t0)
            self.loop.add(d)
        tick = _ModelTick(name="MODEL", rate=model_rate, priority=-1000)
        tick._twin = self
        tick.restart(t0)
        self.loop.add(tick)
        self.solve(t0, refresh=True)

    # ------------------------------------------------------------------ clock
    @property
    def t(self) -> float:
        """The twin's simulated time [s]."""
        return self.loop.t

    def run_until(self, t: float) -> int:
        return self.loop.run_until(t)

    def step(self, dt: float) -> int:
        return self.loop.step(dt)

    # ------------------------------------------------------------------ physics
    def vector(self, t: float | None = None, target: bool = False) -> np.ndarray:
        """The machine's parameter vector (`RingPhysics.keys`) at time ``t``, or at the
        supplies' setpoints with ``target=True``."""
        t = self.t if t is None else t
        vec = self._fixed.copy()
        vec[self._supply_index] = [d.strength(d.setpoint if target else d.raw_at(t)) for d in self._supplies]
        return vec

    def momentum_offset(self, t: float | None = None, *, vec=None, target: bool = False) -> float:
        """The beam's momentum offset ``delta`` that the RF frequency sets at ``t`` (its
        setpoint with ``target``): ``-(df / f_rf) / eta``, the slip factor ``eta`` from the
        ``optics`` stage at the quadrupole settings of ``vec``."""
        rf = self._rf
        if rf is None:
            return 0.0
        df = rf.frequency.setpoint if target else rf.frequency.raw_at(self.t if t is None else t)
        if df == 0.0:
            return 0.0
        vec = self.vector(t, target=target) if vec is None else vec
        return -(df / rf.rf_frequency) / self.slip_factor(vec)

    def slip_factor(self, vec=None) -> float:
        """Slip factor ``eta = alpha_c - 1/gamma0^2`` of the ``optics`` stage at the
        quadrupole settings of ``vec`` (kept per quadrupole setting)."""
        vec = self._vec if vec is None else vec
        q = self._supply_index_quads
        key = np.asarray(vec)[q].tobytes()
        if self._slip[0] != key:
            self._slip = (key, float(self._run_optics(vec)["slip_factor"]))
        return self._slip[1]

    def _deliver(self, stage: str, outputs: dict, t: float) -> list[EventRecord]:
        """Hand a stage's outputs to the devices bound to it; returns the records they emit."""
        out = []
        for d in self._receivers[stage]:
            out.extend(d.receive(stage, outputs, t))
        return out

    def solve(self, t: float | None = None, *, vec=None, refresh: bool = False, delta: float | None = None):
        """Run the ``orbit`` stage at ``t`` and hand its outputs to the devices bound to it;
        `UnstableSettingError` (and nothing changed) when the setting has no good closed orbit."""
        t = self.t if t is None else t
        vec = self.vector(t) if vec is None else vec
        delta = self.momentum_offset(t, vec=vec) if delta is None else delta
        stage = self.stages["orbit"]
        guess = None if self.solution is None else self.solution.z0
        out = stage.run({"parameters": vec, "guess": np.zeros(4) if guess is None else guess, "delta": delta})
        sol = solution_from(out)
        if not sol.ok and guess is not None:  # a far setting: search from the reference
            out = stage.run({"parameters": vec, "guess": np.zeros(4), "delta": delta})
            sol = solution_from(out)
        self.n_solves += 1
        if not sol.ok:
            raise UnstableSettingError(sol.problem())
        self.solution, self._vec, self.delta = sol, vec, float(delta)
        self._deliver("orbit", {"bpm_x": sol.x, "bpm_y": sol.y, "monitor_index": self._monitor_index,
                                "delta": self.delta, "parameters": vec}, t)
        if refresh:
            for b in self._bpms:
                b.refresh(t)
        return sol

    # ------------------------------------------------------------------ writes
    def _device_for(self, name: str):
        v = lookup(name)
        if v.read_only:
            raise ValueError(f"twin variable '{v.variable}' is read-only ({v.description})")
        return v, self.devices[v.device]

    def write(self, values: dict) -> None:
        """Write settings ``{variable: value}`` as one atomic batch (see the module docstring).

        Raises:
            KeyError: an unknown variable; ValueError: a read-only one;
            `jacc_twin.devices.LimitError`: a value outside its device's limits;
            `UnstableSettingError`: the setting has no good closed orbit (rolled back).
        """
        checked = {}
        for name, value in values.items():
            v, dev = self._device_for(name)
            ch = dev.channel(v.field.split(".")[0]) if isinstance(dev, RFStation) else dev
            checked[v.variable] = ch.check(value)
        if self.config.policy == "batched":
            self.pending.update(checked)
            return
        self._apply(checked, self.t, refresh=True)

    def _apply(self, values: dict, t: float, refresh: bool) -> None:
        touched = {lookup(n).device for n in values}
        snaps = {n: self.devices[n].snapshot() for n in touched}
        for name, value in values.items():
            v = lookup(name)
            dev = self.devices[v.device]
            dev.write(v.field.split(".")[0], value, t) if isinstance(dev, RFStation) else dev.write(value, t)
        try:
            rf_frequency = self._rf is not None and any(
                lookup(n).device == self._rf.name and lookup(n).field.startswith("frequency") for n in values)
            if rf_frequency or any(isinstance(self.devices[n], MagnetPowerSupply) for n in touched):
                target = self.vector(t, target=True)
                self.solve(t, vec=target, refresh=refresh, delta=self.momentum_offset(t, vec=target, target=True))
                if any(not isinstance(d.response, Instant) for d in self._supplies) or (
                        rf_frequency and not isinstance(self._rf.frequency.response, Instant)):
                    self.solve(t, refresh=refresh)
            if self._rf is not None and self._rf.name in touched and self._optics[0] is not None:
                self._deliver("optics", self._optics[2], t)  # the synchrotron tune of the new voltage, phase
        except UnstableSettingError as err:
            for n, s in snaps.items():
                self.devices[n].restore(s)
            self.solve(t, refresh=refresh)
            raise UnstableSettingError(f"setting {values} refused and rolled back: {err}") from None
        for n in touched:
            self.loop.reschedule(n)

    def _tick(self, t: float) -> list[EventRecord]:
        out = [EventRecord(t, "MODEL", "tick", self.n_solves)]
        if self.pending:
            batch, self.pending = self.pending, {}
            try:
                self._apply(batch, t, refresh=False)
            except UnstableSettingError as err:
                self.refused.append((t, batch, str(err)))
                out.append(EventRecord(t, "MODEL", "write_refused", str(err)))
        elif any(d.moving(t) for d in self._supplies) or (self._rf is not None and self._rf.frequency.moving(t)):
            self.solve(t)
        return out

    def reset(self) -> None:
        """Put every setting back to its initial value (the seeded faults stay) and re-solve."""
        self.pending = {}
        for name, s in self._initial.items():
            self.devices[name].restore(s)
            self.loop.reschedule(name)
        self.solve(self.t, refresh=True)

    # ------------------------------------------------------------------ readings
    def read(self, name: str):
        """The current value of a variable (a setting, a device's last reading, or a value the
        twin derives: orbit rms, model tunes)."""
        v = lookup(name)
        if v.kind == "derived":
            return self._derived(v.field)
        if v.kind == "waveform":
            if self.tbt is None:
                return np.zeros(0)
            return self.tbt[v.device][0 if v.field == "tbt_x" else 1]
        dev = self.devices[v.device]
        obj = dev
        for part in v.field.split("."):
            obj = getattr(obj, part)
        return float(obj) if not isinstance(obj, int) else obj

    def _derived(self, field: str) -> float:
        if field in ("rms_x", "rms_y"):
            vals = np.array([getattr(b, field[-1]) for b in self._bpms])
            return float(np.sqrt(np.mean(vals ** 2)))
        if field == "qs":  # the RF station's, with the slip factor of the optics stage now
            self._run_optics(self._vec)
            if self._rf is None:
                return math.nan
            self._rf.receive("optics", self._optics[2], self.t)
            return self._rf.synchrotron_tune
        return self.optics()[field]

    def _run_optics(self, vec) -> dict:
        """Run the ``optics`` stage at ``vec`` (kept per setting) and hand its outputs to the
        devices bound to it."""
        key = np.asarray(vec).tobytes()
        if self._optics[0] != key:
            out = self.stages["optics"].run({"parameters": vec})
            out = {**out, "reference_particle": self.ring.rp, "monitor_index": self._monitor_index}
            self._optics = (key, {k: float(out[k]) for k in ("qx", "qy", "dqx", "dqy")}, out)
            self._deliver("optics", out, self.t)
        return self._optics[2]

    def optics(self) -> dict:
        """Model tunes and chromaticities of the machine now (the ``optics`` stage,
        `jacc.twiss`; kept per setting): ``qx, qy, dqx, dqy``."""
        self._run_optics(self._vec)
        return dict(self._optics[1])

    def orbit(self) -> tuple[np.ndarray, np.ndarray]:
        """The true closed orbit ``(x, y)`` at the BPMs [m] (what the BPMs see before their errors)."""
        return self.solution.x.copy(), self.solution.y.copy()

    def bpm_readings(self, stream: str = "orbit_10hz") -> tuple[np.ndarray, np.ndarray]:
        """Last readings ``(x, y)`` [m] of every BPM on ``orbit_10hz`` or ``orbit_1hz``."""
        sfx = "" if stream == "orbit_10hz" else "_1hz"
        return (np.array([getattr(b, "x" + sfx) for b in self._bpms]),
                np.array([getattr(b, "y" + sfx) for b in self._bpms]))

    def measure_tbt(self, n_turns: int = 1024, kick=(5e-5, 5e-5)) -> dict:
        """Kick the beam (``px, py`` [rad] added to the closed orbit at the ring start),
        track ``n_turns`` turns, and hand the turn-by-turn positions to the BPMs, which emit
        ``single_pass`` and ``tbt`` events; returns ``{BPM device: (x (n,), y (n,))}`` readings."""
        x0 = np.zeros(6)
        x0[:4] = self.solution.z0
        x0[1] += kick[0]
        x0[3] += kick[1]
        x0[5] = self.ring.pt(self.delta)
        out = self.stages["tbt"].run({"parameters": self._vec, "x0": x0, "n_turns": float(n_turns)})
        out = {"tbt_x": np.asarray(out["tbt_x"]), "tbt_y": np.asarray(out["tbt_y"]),
               "monitor_index": self._monitor_index}
        self.tbt = {}
        for r in self._deliver("tbt", out, self.t):
            self.loop.emit(r)
            if r.stream == "tbt":
                self.tbt[r.device] = r.value
        return self.tbt

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        """The twin (configuration, every device's state, time) as JSON."""
        cfg = self.config.model_copy(update={"t": self.t})
        return json.dumps({"config": cfg.model_dump(mode="json"),
                           "devices": json.loads(DeviceList(list(self.devices.values())).model_dump_json())})

    @classmethod
    def from_json(cls, text: str, **kw) -> "IotaTwin":
        """Rebuild a twin from `to_json` (``kw``: loop options such as ``clock``, ``record``)."""
        data = json.loads(text)
        cfg = TwinConfig.model_validate(data["config"])
        devices = DeviceList.model_validate(data["devices"]).root
        opts = cfg.model_dump(exclude={"t"})
        opts["faults"] = cfg.faults
        opts["supply_response"] = cfg.supply_response
        return cls(**opts, devices=devices, t0=cfg.t, **kw)
