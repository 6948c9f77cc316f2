"""The twin's Channel Access IOC driven by real clients on loopback: caproto's threading
client and pyepics read, write and monitor; a corrector write moves the BPM readbacks by the
orbit-response prediction; bad writes are refused and change nothing; a client killed
mid-monitor; 10,000 writes applied in order.

One twin (paced to the wall clock, noise off but for one test) and one IOC per module, on a
free port."""

import math
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("caproto")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback_env(port: int) -> dict:
    return dict(EPICS_CA_ADDR_LIST="127.0.0.1", EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_SERVER_PORT=str(port),
                EPICS_CAS_SERVER_PORT=str(port), EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
                EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO", EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1")


@pytest.fixture(scope="module")
def ioc():
    from jacc_twin.control.epics import TwinIOC
    from jacc_twin.iota import IotaTwin

    saved = dict(os.environ)
    os.environ.update(_loopback_env(_free_port()))
    twin = IotaTwin(bpm_noise=0.0, supply_noise=0.0, record=False, clock="wall")
    server = TwinIOC(twin).start()
    yield server
    server.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def ca(ioc):
    from caproto.threading.client import Context

    ctx = Context()
    yield ctx
    ctx.disconnect()


def _pv(ca, name):
    (pv,) = ca.get_pvs(name, timeout=5.0)
    pv.wait_for_connection(timeout=5.0)
    return pv


def test_metadata_fields_waveforms_and_debug_channels(ioc, ca):
    sp = _pv(ca, "IOTA:HCA1R:SETTING")
    md = sp.read(data_type="control").metadata
    assert md.units == b"A" and (md.lower_ctrl_limit, md.upper_ctrl_limit) == (-10.0, 10.0)
    assert (md.lower_alarm_limit, md.lower_warning_limit, md.upper_warning_limit, md.upper_alarm_limit) == \
        (-10.0, -9.0, 9.0, 10.0)
    fields = {f: _pv(ca, f"IOTA:HCA1R:SETTING.{f}").read().data[0] for f in ("HOPR", "LOPR", "HIHI", "LOLO")}
    assert fields == {"HOPR": 10.0, "LOPR": -10.0, "HIHI": 10.0, "LOLO": -10.0}
    assert _pv(ca, "IOTA:HCA1R:SETTING.EGU").read().data[0] == b"A"
    assert len(_pv(ca, "IOTA:ORBIT:X").read().data) == 21
    np.testing.assert_allclose(_pv(ca, "IOTA:ORBIT:S").read().data, ioc.twin.ring.bpm_s, atol=0)
    qx = _pv(ca, "IOTA:TUNE:QX").read().data[0]
    assert qx == pytest.approx(ioc.twin.optics()["qx"], abs=1e-12)
    betx = _pv(ca, "IOTA:DEBUG:BETX:IBPMA1").read().data[0]
    assert betx == pytest.approx(ioc.debug.value("BETX:IBPMA1")) and betx > 0
    assert _pv(ca, "IOTA:DEBUG:QY").read().data[0] == pytest.approx(ioc.twin.optics()["qy"], abs=1e-9)
    (missing,) = ca.get_pvs("IOTA:DEBUG:NOSUCH:IBPMA1", timeout=1.0)
    with pytest.raises(Exception):
        missing.wait_for_connection(timeout=1.0)


def test_corrector_write_moves_bpms_by_the_orm(ioc, ca):
    twin = ioc.twin
    sp, xs, ys = (_pv(ca, f"IOTA:{n}") for n in ("HCA1R:SETTING", "ORBIT:X", "ORBIT:Y"))
    time.sleep(0.3)
    x0, y0 = xs.read().data.copy(), ys.read().data.copy()
    ps = twin.devices["HCA1R"]
    with ioc.lock:
        k0, vec0 = ps.strength(), twin.vector()
    current = ps.current_for(k0 + 10e-6)  # a 10 urad kick
    sp.write(current, wait=True, timeout=5.0)
    time.sleep(0.35)  # the next 10 Hz BPM events carry the new orbit
    x1, y1 = xs.read().data, ys.read().data
    dkick = ps.strength() - k0
    assert dkick == pytest.approx(10e-6, rel=1e-9)
    col = twin.ring.correctors.index("ca1r:1")
    pred = twin.ring.orm(vec0)[:, col] * dkick
    change = np.concatenate([x1 - x0, y1 - y0])
    assert np.max(np.abs(change)) > 1e-6
    # second order in the kick (sextupoles; 7.8e-10 m at the largest BPM for this corrector,
    # as in tests/test_twin_iota.py) and the ORM's linearisation; BPMs perfect, no noise
    assert np.max(np.abs(change - pred)) < 1e-9


def test_corrector_write_with_bpm_noise_on(ioc, ca):
    twin = ioc.twin
    noise = 2e-6
    bpms = [d for d in twin.devices.values() if type(d).__name__ == "BPM"]
    sp, xs, ys = (_pv(ca, f"IOTA:{n}") for n in ("HCB2R:SETTING", "ORBIT:X", "ORBIT:Y"))
    try:
        with ioc.lock:
            for b in bpms:
                b.noise = noise
        time.sleep(0.3)
        x0, y0 = xs.read().data.copy(), ys.read().data.copy()
        ps = twin.devices["HCB2R"]
        with ioc.lock:
            k0, vec0 = ps.strength(), twin.vector()
        sp.write(ps.current_for(k0 + 10e-6), wait=True, timeout=5.0)
        time.sleep(0.35)
        x1, y1 = xs.read().data, ys.read().data
    finally:
        with ioc.lock:
            for b in bpms:
                b.noise = 0.0
    pred = twin.ring.orm(vec0)[:, twin.ring.correctors.index("cb2r:1")] * (ps.strength() - k0)
    change = np.concatenate([x1 - x0, y1 - y0])
    # the difference of two readings has an rms of sqrt(2) noise; 6 sigma over 42 values
    assert np.max(np.abs(change - pred)) < 6 * math.sqrt(2) * noise
    assert np.max(np.abs(change - pred)) > 1e-9  # the noise is there


def test_monitor_updates_at_the_bpm_rate(ioc, ca):
    pv = _pv(ca, "IOTA:IBPMA1:X")
    stamps = []

    def cb(sub, response):
        stamps.append(time.monotonic())

    sub = pv.subscribe()
    sub.add_callback(cb)  # caproto keeps a weak reference: cb lives in this frame
    time.sleep(2.0)
    sub.clear()
    n = len(stamps)
    assert 15 <= n <= 25, n  # 10 Hz over 2 s, plus the first value


def test_bad_writes_refused_and_change_nothing(ioc, ca):
    sp = _pv(ca, "IOTA:HCA1R:SETTING")
    sp.write(0.5, wait=True, timeout=5.0)
    before = (ioc.twin.devices["HCA1R"].setpoint, ioc.twin.orbit()[0].copy())
    for bad in (99.0, -10.5, math.nan, math.inf):
        sp.write(bad, wait=False)
    sp.write("not a number", data_type=0, wait=False)  # DBR_STRING to a double
    time.sleep(0.5)
    reading = sp.read(data_type="time")
    assert reading.data[0] == 0.5
    assert reading.metadata.status == 2 and reading.metadata.severity == 2  # WRITE, MAJOR
    assert ioc.twin.devices["HCA1R"].setpoint == before[0]
    np.testing.assert_array_equal(ioc.twin.orbit()[0], before[1])
    ro = _pv(ca, "IOTA:IBPMA1:X")
    with pytest.raises(Exception, match="(?i)access|permission|write"):
        ro.write(1.0, wait=True, timeout=2.0)
    sp.write(0.25, wait=True, timeout=5.0)  # a good write clears the alarm
    reading = sp.read(data_type="time")
    assert reading.data[0] == 0.25 and reading.metadata.severity == 0


def test_pyepics_read_write_monitor(ioc):
    epics = pytest.importorskip("epics")
    assert epics.caget("IOTA:HCB1R:SETTING", timeout=5.0) == ioc.twin.devices["HCB1R"].setpoint
    seen = []
    pv = epics.PV("IOTA:HCB1R:READING", auto_monitor=True,
                  callback=lambda value=None, **kw: seen.append(value))
    assert pv.wait_for_connection(timeout=5.0)
    assert epics.caput("IOTA:HCB1R:SETTING", 0.75, wait=True, timeout=5.0) == 1
    time.sleep(0.4)
    assert ioc.twin.devices["HCB1R"].setpoint == 0.75
    assert seen and seen[-1] == pytest.approx(0.75, abs=1e-12)
    epics.caput("IOTA:HCB1R:SETTING", 50.0, wait=True, timeout=5.0)
    time.sleep(0.2)
    assert epics.caget("IOTA:HCB1R:SETTING") == 0.75 and ioc.twin.devices["HCB1R"].setpoint == 0.75
    assert epics.caget("IOTA:HCB1R:SETTING.HOPR") == 10.0
    assert epics.caget("IOTA:HCB1R:STATUS", as_string=True) == "READY"
    pv.clear_callbacks()
    pv.disconnect()


_MONITOR_CLIENT = """
import sys, time
from caproto.threading.client import Context
ctx = Context()
(pv,) = ctx.get_pvs("IOTA:ORBIT:X", timeout=5)
pv.wait_for_connection(timeout=5)
n = []
def cb(sub, r):
    n.append(1)
    if len(n) == 3:
        print("monitoring", flush=True)
sub = pv.subscribe()
sub.add_callback(cb)
time.sleep(30)
"""


def test_survives_a_client_killed_mid_monitor(ioc, ca):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", _MONITOR_CLIENT], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "monitoring"
    finally:
        proc.kill()  # by its id: the process this test started
        proc.wait(timeout=10)
    time.sleep(0.3)
    stamps = []

    def cb(sub, response):
        stamps.append(response.data[0])

    sub = _pv(ca, "IOTA:IBPMA1:X").subscribe()
    sub.add_callback(cb)
    time.sleep(0.6)
    sub.clear()
    assert len(stamps) >= 4
    assert _pv(ca, "IOTA:HCA1R:SETTING").read().data.shape == (1,)


# every write solves the machine (about 4 ms): a burst of 1,000 unacknowledged writes, and
# 10,000 writes each waiting for its acknowledgement (about a minute: slow)
@pytest.mark.parametrize("n, wait", [(1000, False), pytest.param(10_000, True, marks=pytest.mark.slow)])
def test_writes_applied_in_order(ioc, ca, n, wait):
    sp = _pv(ca, "IOTA:HCC1R:SETTING")
    values = [1e-3 * ((i % 200) - 100) for i in range(n)]
    n0 = ioc.n_applied
    for v in values:
        sp.write(v, wait=wait, timeout=10.0)
    sp.write(0.125, wait=True, timeout=120.0)
    values.append(0.125)
    assert ioc.n_applied - n0 == len(values)
    mine = [v for name, v in list(ioc.applied)[-len(values):] if name == "HCC1R:SETTING"]
    assert mine == values
    assert ioc.twin.devices["HCC1R"].setpoint == 0.125
    assert sp.read().data[0] == 0.125
