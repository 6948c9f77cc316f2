"""The devices of the IOTA twin, built from the variable table and the machine's faults."""

from __future__ import annotations

from .devices import (BPM, DCCT, GenericValueModel, Instant, MagnetPowerSupply, RFStation, Timer,
                      excitation)
from .names import variables

__all__ = ["build_devices", "DeviceOptions"]


class DeviceOptions:
    """Options of the IOTA devices (see `IotaTwin`)."""

    def __init__(self, *, seed: int = 0, bpm_noise: float = 2e-6, bpm_noise_tbt: float = 1e-5,
                 supply_noise: float = 1e-4, supply_response=None, supply_readback_rate: float = 10.0):
        self.seed, self.bpm_noise, self.bpm_noise_tbt = int(seed), float(bpm_noise), float(bpm_noise_tbt)
        self.supply_noise, self.supply_readback_rate = float(supply_noise), float(supply_readback_rate)
        self.supply_response = Instant() if supply_response is None else supply_response


def build_devices(ring, faults, opts: DeviceOptions) -> list:
    """Every device of the table: corrector and quadrupole supplies (set to the design
    strengths; bound to the ``orbit`` stage's ``parameters``, their knob the quantity), BPMs
    (with the faults' calibration; bound to the ``orbit`` and ``tbt`` stages at their
    monitor), the DCCT, the RF station (the ``orbit`` stage's ``delta``) and the timer."""
    brho = abs(ring.rp.brho)
    devices = {}
    for v in variables().values():
        if v.device in devices:
            continue
        if v.kind == "setting" and v.parameter in ring.index:
            devices[v.device] = _supply(ring, faults, opts, v, brho)
        elif v.field in ("x", "y") and v.element in ring.bpms:
            g = faults.bpm.get(v.element, (1.0, 1.0, 0.0, 0.0, 0.0))
            devices[v.device] = BPM(name=v.device, quantity=v.element, seed=opts.seed, gain_x=g[0],
                                    gain_y=g[1], roll=g[2], offset_x=g[3], offset_y=g[4],
                                    noise=opts.bpm_noise, noise_tbt=opts.bpm_noise_tbt, priority=10)
    devices["DCCT"] = DCCT(name="DCCT", seed=opts.seed, priority=20)
    cav = ring.lattice["rfc"]
    devices["RF"] = RFStation(
        name="RF", cavity="rfc", seed=opts.seed, priority=20, harmonic=ring.harmonic,
        rf_frequency=ring.rf_frequency,
        voltage=GenericValueModel(name="RF.voltage", unit="V", setpoint=cav.voltage, value=cav.voltage,
                                  raw_value=cav.voltage, transition_from=cav.voltage, low=0.0, high=2000.0,
                                  noise=1.0, readback_rate=1.0),
        phase=GenericValueModel(name="RF.phase", unit="deg", setpoint=360.0 * cav.lag, value=360.0 * cav.lag,
                                raw_value=360.0 * cav.lag, transition_from=360.0 * cav.lag, low=-180.0,
                                high=180.0, noise=0.01, readback_rate=1.0))
    devices["TIMER"] = Timer(name="TIMER", priority=30)
    return list(devices.values())


def _supply(ring, faults, opts: DeviceOptions, v, brho: float) -> MagnetPowerSupply:
    is_quad = v.parameter in ring.quad_knobs
    exc = excitation("iota_quadrupole" if is_quad else "iota_corrector")
    if is_quad:
        cal = faults.quad_calibration.get(v.parameter, 1.0)
    else:
        field = "xangle" if v.device.startswith("H") else "yangle"
        cal = faults.corrector_calibration.get((v.element, field), 1.0)
    ps = MagnetPowerSupply(name=v.device, segment="orbit", quantity=v.parameter, parameter=v.parameter,
                           excitation=exc, brho=brho, calibration=cal, seed=opts.seed, unit="A",
                           low=v.low, high=v.high, noise=opts.supply_noise, response=opts.supply_response,
                           readback_rate=opts.supply_readback_rate, priority=5)
    i0 = ps.current_for(float(ring.base[ring.index[v.parameter]]))
    ps.setpoint = ps.last_setpoint = ps.raw_value = ps.value = ps.transition_from = i0
    return ps
