"""The DPM-like adapter over the IOTA twin: reads and settings through DRF2 strings, limits,
periodic and clock-event requests counted exactly over a simulated interval.

One twin per module, on the simulated clock."""

import math

import numpy as np
import pytest

from jacc_twin.control.acnet import DoubleDevice, DPMAdapter
from jacc_twin.devices import LimitError
from jacc_twin.iota import IotaTwin


@pytest.fixture(scope="module")
def twin():
    return IotaTwin(bpm_noise=0.0, supply_noise=0.0, record=False)


@pytest.fixture()
def dpm(twin):
    twin.reset()
    a = DPMAdapter(twin, aliases={"B:TRMH1D": "DCCT:CURRENT"})
    yield a
    a.close()


def test_read_and_set_through_drf(twin, dpm):
    sp = twin.devices["HCA1R"].setpoint
    assert DoubleDevice("N:IHA1R.SETTING@I").read(adapter=dpm) == sp
    assert dpm.read("N_IHA1R") == sp  # the qualifier selects SETTING
    DoubleDevice("N:IHA1R.SETTING@I").set(sp + 0.25, adapter=dpm)
    assert twin.devices["HCA1R"].setpoint == sp + 0.25
    twin.step(0.2)  # the 10 Hz supply readback follows (no noise)
    assert DoubleDevice("N:IHA1R").read(adapter=dpm) == pytest.approx(sp + 0.25, abs=1e-12)
    assert dpm.read("N:IHA1R.SETTING.PRIMARY") == sp + 0.25
    x = dpm.read("N:IBA1H")  # a BPM's 10 Hz horizontal reading
    assert x == twin.read("IBPMA1:X")
    assert dpm.read("N:IQX") == pytest.approx(twin.optics()["qx"])


def test_settings_refused_with_clear_errors(twin, dpm):
    dev = DoubleDevice("N:IHA1R.SETTING", adapter=dpm)
    before = twin.devices["HCA1R"].setpoint
    with pytest.raises(LimitError, match="outside its limits"):
        dev.set(99.0)
    with pytest.raises(ValueError, match="not a finite number"):
        dev.set(math.nan)
    with pytest.raises(TypeError, match="a real number"):
        dev.set("1.0")
    with pytest.raises(ValueError, match="only the SETTING property can be set"):
        dpm.set("N:IHA1R", 0.1)
    with pytest.raises(KeyError, match="no twin device N:NOSUCH"):
        dpm.set("N_NOSUCH", 0.1)
    with pytest.raises(ValueError, match="READING and SETTING"):
        dpm.read("N|IHA1R")
    with pytest.raises(ValueError, match="field RAW is not served"):
        dpm.read("N:IHA1R.RAW")
    with pytest.raises(ValueError, match="no adapter"):
        DoubleDevice("N:IHA1R").read()
    assert twin.devices["HCA1R"].setpoint == before


def test_periodic_requests_exact_counts(twin, dpm):
    t0 = twin.t
    fast = dpm.subscribe("N:IHA1R.SETTING@P,100")            # 10 Hz, first reading at once
    late = dpm.subscribe("N:IHA1R.SETTING@P,100,FALSE")      # 10 Hz, none at once
    slow = dpm.subscribe("N:IBA1H@p,2H")                     # 2 Hz
    onchange = dpm.subscribe("N:IHA1R.SETTING@Q,100")        # only when it changes
    twin.step(5.0)
    dpm.set("N:IHA1R.SETTING", twin.devices["HCA1R"].setpoint + 0.1)
    twin.run_until(t0 + 20.0)
    assert len(fast.readings) == 200 and len(late.readings) == 199 and len(slow.readings) == 40
    assert len(onchange.readings) == 2
    assert [r.t for r in fast.readings[:3]] == pytest.approx([t0, t0 + 0.1, t0 + 0.2], abs=1e-12)
    assert fast.get(timeout=1).t == t0
    fast.cancel()
    twin.step(1.0)
    assert len(fast.readings) == 200 and len(late.readings) == 209


def test_clock_event_requests(twin, dpm):
    t0 = math.ceil(twin.t) + 1.0
    twin.run_until(t0)
    beam = dpm.subscribe("B:TRMH1D.COMMON@E,1D,E,10")   # each beam-current reading, 10 ms later
    beat = dpm.subscribe("N:ITIMER@E,8F")               # the 1 Hz heartbeat
    twin.run_until(t0 + 3.0)
    assert len(beam.readings) == 30 and len(beat.readings) == 3
    assert beam.readings[0].t == pytest.approx(t0 + 0.01, abs=1e-12)
    assert 1e-3 < beam.readings[0].value < 3e-3  # A, the stored beam
    assert beat.readings[-1].value == twin.read("TIMER:COUNT")
    value = DoubleDevice("B:TRMH1D.COMMON@E,1D,E,10").read(adapter=dpm)
    assert value == pytest.approx(twin.read("DCCT:CURRENT"), rel=1e-2)
    with pytest.raises(ValueError, match="no clock event 0x77"):
        dpm.subscribe("N:IHA1R@E,77")
    with pytest.raises(ValueError, match="never delivers"):
        dpm.read("N:IHA1R@N")


def test_waveform_ranges(twin, dpm):
    twin.measure_tbt(64)
    tbt = dpm.read("N:IBA1HT")
    assert tbt.shape == (64,)
    np.testing.assert_array_equal(DoubleDevice("N:IBA1HT[2:5]").read(adapter=dpm), tbt[2:6])
    with pytest.raises(ValueError, match="is a scalar"):
        dpm.read("N:IHA1R[3]")
