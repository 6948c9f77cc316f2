"""The twin's event loop and devices, without physics: timing, determinism, response models,
limits, resolution, BPM calibration, JSON round trip."""

import math

import numpy as np
import pytest

from jacc_twin.devices import (BPM, DeviceList, Exponential, GenericValueModel, Instant, LimitError,
                               Timer, Underdamped, VirtualDevice)
from jacc_twin.loop import EventLoop


def _loop(seed=1):
    devs = [Timer(name="fast", rate=100.0), Timer(name="mid", rate=10.0), Timer(name="slow", rate=1.0),
            GenericValueModel(name="psu", noise=0.1, readback_rate=10.0, seed=seed),
            BPM(name="bpm", noise=1e-6, seed=seed, position_x=1e-3, quantity="b")]
    return EventLoop(devs)


def test_event_counts_on_half_open_interval():
    loop = _loop()
    loop.run_until(60.0)
    c = loop.stream_counts()
    # events at k / rate for k / rate < 60 s: exactly 60 rate events each
    assert (c["fast.tick"], c["mid.tick"], c["slow.tick"]) == (6000, 600, 60)
    assert (c["bpm.orbit_10hz"], c["bpm.orbit_1hz"]) == (600, 60)
    assert loop.t == 60.0 and loop.next_time() == 60.0


def test_event_records_are_deterministic():
    a, b = _loop(seed=3), _loop(seed=3)
    a.run_until(5.0)
    for _ in range(50):  # the same span in steps
        b.step(0.1)
    assert a.records == b.records
    c = _loop(seed=4)
    c.run_until(5.0)
    assert [r[:3] for r in c.records] == [r[:3] for r in a.records]  # same times and order
    assert c.records != a.records  # other noise
    # order at a shared time: priority, then name
    at0 = [r.device for r in a.records if r.t == 0.0]
    assert at0 == sorted(at0)


class _Backwards(VirtualDevice):
    kind: str = "backwards"

    def query_next_event(self, t):
        return t - 1.0


def test_device_asking_for_the_past_is_named():
    loop = EventLoop([Timer(name="t")])
    loop.run_until(2.0)
    with pytest.raises(ValueError, match="device 'late'.*before the loop's time"):
        loop.add(_Backwards(name="late"))


def test_exponential_response_reaches_one_minus_1_over_e_at_tau():
    d = GenericValueModel(name="ps", response=Exponential(tau=0.25))
    d.write(2.0, t=1.0)
    # analytic, evaluated on the simulated clock: only rounding remains
    assert d.raw_at(1.25) == pytest.approx(2.0 * (1 - math.exp(-1)), rel=1e-9)
    assert d.raw_at(1.0) == 0.0 and abs(d.raw_at(1.0 + 40 * 0.25) - 2.0) < 1e-15


def test_underdamped_overshoot_is_analytic():
    r = Underdamped(frequency=5.0, damping=0.2)
    d = GenericValueModel(name="ps", response=r)
    d.write(1.0, t=0.0)
    wd = 2 * math.pi * 5.0 * math.sqrt(1 - 0.2 ** 2)
    t_peak = math.pi / wd
    ts = np.linspace(0.0, 2 * t_peak, 20001)
    vals = np.array([d.raw_at(t) for t in ts])
    expected = math.exp(-math.pi * 0.2 / math.sqrt(1 - 0.2 ** 2))
    assert d.raw_at(t_peak) - 1.0 == pytest.approx(expected, rel=1e-12)
    # the sampled maximum is the analytic peak (grid spacing 1e-4 of the peak time: 2nd order)
    assert vals.max() - 1.0 == pytest.approx(r.overshoot(), rel=1e-6)


def test_limits_clamp_or_refuse_and_resolution_quantises():
    refuse = GenericValueModel(name="q", low=-1.0, high=1.0, limit_mode="refuse")
    with pytest.raises(LimitError, match="device 'q'.*outside its limits"):
        refuse.write(1.5, 0.0)
    assert refuse.setpoint == 0.0
    clamp = GenericValueModel(name="c", low=-1.0, high=1.0, limit_mode="clamp")
    assert clamp.write(1.5, 0.0) == 1.0 and clamp.write(-7.0, 0.0) == -1.0
    q = GenericValueModel(name="r", resolution=0.01, response=Instant())
    q.write(0.123456, 0.0)
    assert q.read(0.0) == pytest.approx(0.12, abs=1e-15)
    with pytest.raises(ValueError, match="low limit"):
        GenericValueModel(name="bad", low=2.0, high=1.0)


def test_event_threshold_publishes_only_changes():
    d = GenericValueModel(name="e", readback_rate=10.0, event_threshold=0.5)
    loop = EventLoop([d])
    loop.run_until(1.0)
    assert sum(r.published for r in loop.records) == 1  # the first reading only
    d.write(1.0, loop.t)
    loop.run_until(2.0)
    assert sum(r.published for r in loop.records) == 2


def test_bpm_gain_offset_roll_and_pincushion():
    b = BPM(name="b", gain_x=1.1, gain_y=0.9, offset_x=1e-4, offset_y=-2e-4, roll=0.01)
    x, y = 1e-3, -2e-3
    u, v = b.reading(x, y, 0.0)
    c, s = math.cos(0.01), math.sin(0.01)
    assert u == pytest.approx(1.1 * (c * x + s * y) + 1e-4, abs=1e-18)
    assert v == pytest.approx(0.9 * (-s * x + c * y) - 2e-4, abs=1e-18)
    p = BPM(name="p", pincushion=100.0)
    u, v = p.reading(1e-3, 0.0, 0.0)
    assert u == pytest.approx(1e-3 * (1 + 100.0 * 1e-6), abs=1e-18) and v == 0.0
    d = BPM(name="d", drift_x=1e-6)
    assert d.reading(0.0, 0.0, 10.0)[0] == pytest.approx(1e-5, abs=1e-20)


def test_bpm_1hz_is_the_mean_of_10hz():
    b = BPM(name="b", noise=1e-6, seed=2, position_x=1e-3)
    loop = EventLoop([b])
    loop.run_until(1.05)
    fast = [r.value[0] for r in loop.records if r.stream == "orbit_10hz" and 0.0 < r.t <= 1.0]
    assert len(fast) == 10
    assert b.x_1hz == pytest.approx(np.mean(fast), abs=1e-18)


def test_devices_round_trip_json():
    devs = DeviceList([GenericValueModel(name="g", response=Underdamped(frequency=2.0, damping=0.3)),
                       BPM(name="b", roll=1e-3), Timer(name="t")])
    text = devs.model_dump_json()
    back = DeviceList.model_validate_json(text)
    assert back.model_dump_json() == text
    assert isinstance(back.root[0].response, Underdamped)


def test_wall_clock_pacing_start_and_stop():
    import time

    loop = EventLoop([Timer(name="t", rate=100.0)], clock="wall", speed=10.0)
    t0 = time.perf_counter()
    n = loop.run_until(0.5)
    wall = time.perf_counter() - t0
    # 50 events in [0, 0.5 s); the last one (t = 0.49 s) is due 0.049 s of wall time after
    # the start at 10x; the upper bound only guards against a loop that sleeps per event
    assert n == 50 and loop.t == 0.5
    assert 0.045 <= wall < 5.0
    bg = EventLoop([Timer(name="t", rate=100.0)], clock="wall", speed=100.0)
    bg.start()
    with pytest.raises(RuntimeError, match="already running"):
        bg.start()
    time.sleep(0.2)
    assert bg.running
    bg.stop()
    assert not bg.running
    ticks = bg.counts[("t", "tick")]
    # 0.2 s of wall time at 100x is about 20 simulated seconds, 2000 events at 100 Hz;
    # paced, so far fewer than a free run would make in that time
    assert 100 < ticks < 4000 and 1.0 < bg.t < 40.0
    time.sleep(0.05)
    assert bg.counts[("t", "tick")] == ticks  # stopped: nothing more happens


def test_package_import_is_lazy():
    """``import jacc_twin`` and the device layer load no JAX; the first public name does
    (with float64 on)."""
    import subprocess
    import sys

    code = ("import sys, jacc_twin, jacc_twin.devices, jacc_twin.loop, jacc_twin.names, jacc_twin.cli\n"
            "assert 'jax' not in sys.modules and 'jacc' not in sys.modules, sorted(sys.modules)\n"
            "jacc_twin.Pipeline\n"
            "import jax.numpy as jnp\n"
            "assert 'jax' in sys.modules and jnp.zeros(1).dtype == jnp.float64\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
