"""The IOTA twin: orbit against the ORM, NAFF tunes against jacc.twiss, atomic writes with
rollback, update policies, reset, JSON round trip, write latency.

One twin per module (the ring's compiled programs are shared by every twin of a species)."""

import time

import numpy as np
import pytest

from jacc_twin.devices import LimitError
from jacc_twin.iota import IotaTwin, UnstableSettingError


@pytest.fixture(scope="module")
def twin():
    # noise off: the comparisons below are about the physics
    return IotaTwin(bpm_noise=0.0, bpm_noise_tbt=0.0, supply_noise=0.0)


def test_corrector_step_moves_10hz_orbit_by_the_orm(twin):
    twin.reset()
    twin.step(1.0)
    x0, y0 = twin.bpm_readings("orbit_10hz")
    ps = twin.devices["HCA1R"]
    k0 = ps.strength()
    di = ps.current_for(k0 + 10e-6) - ps.setpoint  # a 10 urad kick
    twin.write({"HCA1R:SETTING": ps.setpoint + di})
    dkick = ps.strength() - k0
    assert dkick == pytest.approx(10e-6, rel=1e-12)
    twin.step(1.0)  # the 10 Hz stream carries the new orbit
    x1, y1 = twin.bpm_readings("orbit_10hz")
    orm = twin.ring.orm(twin.vector())
    col = twin.ring.correctors.index("ca1r:1")
    pred = orm[:, col] * dkick
    change = np.concatenate([x1 - x0, y1 - y0])
    assert np.max(np.abs(change)) > 1e-6
    # what remains is second order in the kick (sextupoles; ~1e-10 m at 10 urad, measured
    # 7.8e-10 m at the largest BPM) and the ORM's own linearisation; the BPMs are perfect here
    assert np.max(np.abs(change - pred)) < 1e-9


def test_naff_tunes_from_1024_turns_match_twiss(twin):
    from jacc_twin.naff import naff_tunes

    twin.reset()
    tbt = twin.measure_tbt(1024, kick=(2e-5, 2e-5))
    x = np.array([v[0] for v in tbt.values()]).T
    y = np.array([v[1] for v in tbt.values()]).T
    assert x.shape == (1024, 21)
    qx, qy = naff_tunes(x, y)
    model = twin.optics()
    # NAFF with a Hann window resolves a pure tone to ~1/N^4; the rest is amplitude detuning
    # at 0.1 mm (measured 1.5e-7)
    assert abs(qx - model["qx"] % 1.0) < 1e-5
    assert abs(qy - model["qy"] % 1.0) < 1e-5
    recs = [r for r in twin.loop.records if r.stream == "single_pass"]
    assert len(recs) >= 21


def test_unstable_setting_is_rolled_back(twin):
    twin.reset()
    before = twin.orbit()
    sp = {n: twin.devices[n].setpoint for n in ("KQ01", "HCA1R")}
    with pytest.raises(UnstableSettingError, match="refused and rolled back"):
        twin.write({"HCA1R:SETTING": 1.0, "KQ01:SETTING": 25.0})
    assert {n: twin.devices[n].setpoint for n in sp} == sp
    np.testing.assert_array_equal(twin.orbit()[0], before[0])
    with pytest.raises(LimitError, match="device 'HCA1R'"):
        twin.write({"HCA1R:SETTING": 99.0})
    with pytest.raises(ValueError, match="read-only"):
        twin.write({"IBPMA1:X": 0.0})
    with pytest.raises(KeyError, match="unknown twin variable"):
        twin.write({"HCA9Z:SETTING": 0.0})


def test_batch_solves_once_and_reset_restores(twin):
    twin.reset()
    x0 = twin.orbit()[0]
    n = twin.n_solves
    twin.write({"HCA1R:SETTING": 0.3, "HCB1R:SETTING": -0.2, "VCA1R:SETTING": 0.1})
    assert twin.n_solves == n + 1
    assert np.max(np.abs(twin.orbit()[0] - x0)) > 1e-6
    twin.reset()
    assert twin.devices["HCA1R"].setpoint == 0.0
    # the same orbit up to the Newton search's stopping mismatch (1e-14 m), reached from another guess
    np.testing.assert_allclose(twin.orbit()[0], x0, atol=1e-13)


def test_synchronous_write_latency_is_milliseconds(twin):
    twin.reset()
    ts = []
    for i in range(20):
        t = time.perf_counter()
        twin.write({"HCA1R:SETTING": 0.01 * (i % 2)})
        twin.read("IBPMB1R:X")
        ts.append(time.perf_counter() - t)
    # target 10 ms; 50 ms leaves room for a machine shared with other jobs
    assert np.median(ts) < 0.05


def test_batched_policy_applies_at_the_model_tick():
    b = IotaTwin(policy="batched", bpm_noise=0.0, supply_noise=0.0)
    b.step(0.05)
    x0 = b.bpm_readings()[0].copy()
    b.write({"HCA1R:SETTING": 0.5, "HCB1R:SETTING": 0.5})
    assert b.pending and np.array_equal(b.bpm_readings()[0], x0)
    n = b.n_solves
    b.step(0.1)  # the tick at 0.1 s solves, then the BPMs read at 0.1 s
    assert b.n_solves == n + 1 and not b.pending
    assert np.max(np.abs(b.bpm_readings()[0] - x0)) > 1e-6
    b.write({"KQ01:SETTING": 25.0})
    b.step(0.1)
    assert b.refused and any(r.stream == "write_refused" for r in b.loop.records)
    assert b.devices["KQ01"].setpoint != 25.0


def test_json_round_trip_rebuilds_an_identical_twin():
    a = IotaTwin(errors_seed=5, seed=9)
    text = a.to_json()
    b = IotaTwin.from_json(text)
    assert b.to_json() == text
    a.run_until(3.0)
    b.run_until(3.0)
    assert a.loop.records == b.loop.records
    np.testing.assert_array_equal(a.orbit()[0], b.orbit()[0])
