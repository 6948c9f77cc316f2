"""The twin's PVs over PV Access (p4p's isolated loopback server) read, written and monitored
through p4p's client: normative types with alarm, timeStamp, display and control; refused
writes answered with the error and no change.

One twin (paced to the wall clock, noise off) per module."""

import math
import time

import numpy as np
import pytest

pytest.importorskip("p4p")


@pytest.fixture(scope="module")
def pva():
    from jacc_twin.control.pva import TwinPVA
    from jacc_twin.iota import IotaTwin

    twin = IotaTwin(bpm_noise=0.0, supply_noise=0.0, record=False, clock="wall")
    server = TwinPVA(twin, isolate=True).start()
    twin.loop.start()
    yield server
    twin.loop.stop()
    server.stop()


@pytest.fixture(scope="module")
def ctx(pva):
    from p4p.client.thread import Context

    c = Context("pva", conf=pva.client_conf(), useenv=False)
    yield c
    c.close()


def test_normative_types(pva, ctx):
    v = ctx.get("IOTA:HCA1R:SETTING", timeout=5.0)
    raw = v.raw
    assert raw.getID() == "epics:nt/NTScalar:1.0"
    assert raw["display.units"] == "A"
    assert (raw["display.limitLow"], raw["display.limitHigh"]) == (-10.0, 10.0)
    assert (raw["control.limitLow"], raw["control.limitHigh"]) == (-10.0, 10.0)
    assert raw["valueAlarm.highWarningLimit"] == 9.0 and raw["alarm.severity"] == 0
    assert abs(v.timestamp - time.time()) < 60
    orbit = ctx.get("IOTA:ORBIT:X", timeout=5.0)
    assert orbit.raw.getID() == "epics:nt/NTScalarArray:1.0" and len(orbit) == 21
    assert float(ctx.get("IOTA:TUNE:QX")) == pytest.approx(pva.twin.optics()["qx"], abs=1e-12)


def test_read_write_monitor(pva, ctx):
    seen = []
    sub = ctx.monitor("IOTA:HCA2R:READING", lambda v: seen.append(float(v)))
    try:
        ctx.put("IOTA:HCA2R:SETTING", 0.4, timeout=5.0)
        assert pva.twin.devices["HCA2R"].setpoint == 0.4
        assert float(ctx.get("IOTA:HCA2R:SETTING")) == 0.4
        time.sleep(0.5)
        assert seen and seen[-1] == pytest.approx(0.4, abs=1e-12)
    finally:
        sub.close()


def test_bad_writes_refused(pva, ctx):
    ctx.put("IOTA:HCA2R:SETTING", 0.2, timeout=5.0)
    orbit = pva.twin.orbit()[0].copy()
    for bad in (99.0, math.nan, math.inf):
        with pytest.raises(Exception, match="outside its limits|not a finite number"):
            ctx.put("IOTA:HCA2R:SETTING", bad, timeout=5.0)
    with pytest.raises(Exception):
        ctx.put("IOTA:HCA2R:SETTING", "abc", timeout=5.0)
    with pytest.raises(Exception):
        ctx.put("IOTA:IBPMA1:X", 1.0, timeout=5.0)  # read-only
    v = ctx.get("IOTA:HCA2R:SETTING")
    assert float(v) == 0.2 and v.severity == 2 and "refused" in v.raw["alarm.message"]
    assert pva.twin.devices["HCA2R"].setpoint == 0.2
    np.testing.assert_array_equal(pva.twin.orbit()[0], orbit)
