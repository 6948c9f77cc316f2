"""Corrections: SVD orbit correction and closed-orbit bumps on IOTA, tune and chromaticity knobs."""

import os

import numpy as np
import pytest

import jacc
from jacc.calibrate import ErrorSpec, draw_errors
from jacc.correct import chroma_knobs, correct_orbit, orbit_bump, set_tunes, tune_knobs

slow = [pytest.mark.slow, pytest.mark.skipif(os.environ.get("JACC_SLOW") != "1",
                                             reason="compile-heavy check; run with JACC_SLOW=1")]


@pytest.fixture(scope="module")
def iota():
    lat, rp = jacc.lattices.iota()
    corr = [p.key for p in lat.elements if p.element_name == "HVCorrector"]
    return lat, rp, corr


@pytest.fixture(scope="module")
def misaligned(iota):
    lat, rp, corr = iota
    # 100 um rms quadrupole offsets: a mm-level closed orbit in IOTA
    errors = draw_errors(lat, ErrorSpec(quad_rel=0.0, quad_offset=100e-6), seed=3, correctors=corr)
    return errors.apply(lat)


@pytest.mark.slow  # the closed orbit's response matrix of IOTA: a minute of compilation
def test_svd_orbit_correction_reduces_rms_tenfold(iota, misaligned):
    _, rp, corr = iota
    res = correct_orbit(misaligned, rp, correctors=corr)
    assert res.rms_before["x"] > 5e-4 and res.rms_before["y"] > 5e-4  # a real orbit to correct
    for plane in "xy":
        assert res.rms_after[plane] < res.rms_before[plane] / 10, str(res)
    # the returned lattice carries the kicks: its orbit is the corrected one
    tw = jacc.twiss(res.lattice, rp, model=jacc.XsuiteExactBend())
    rows = [p.index + 1 for p in res.lattice.elements if p.element_name == "Monitor"]
    np.testing.assert_allclose(np.asarray(tw.x)[rows], res.orbit_after[:21], atol=1e-12)
    assert "rms x" in str(res) and len(res.kicks) == 40
    # fewer singular values: a smaller, smoother correction
    few = correct_orbit(misaligned, rp, correctors=corr, n_singular=8, iterations=1)
    assert few.rms_before == res.rms_before
    assert res.rms_after["x"] < few.rms_after["x"] < few.rms_before["x"]
    assert np.sum(np.square(list(few.kicks.values()))) < np.sum(np.square(list(res.kicks.values())))
    with pytest.raises(ValueError, match="n_singular"):
        correct_orbit(misaligned, rp, correctors=corr, n_singular=99)


@pytest.mark.parametrize("_", [pytest.param(0, marks=slow)])
def test_closed_orbit_bump(iota, _):
    lat, rp, _ = iota
    res = orbit_bump(lat, rp, "ibpmb2r:1", plane="x", position=1e-3, progress=False,
                     model=jacc.XsuiteExactBend())
    assert res.converged and len(res.knobs) == 3
    tw = jacc.twiss(res.lattice, rp, model=jacc.XsuiteExactBend())
    i_at = lat["ibpmb2r:1"].index + 1
    assert abs(float(tw.x[i_at]) - 1e-3) < 1e-10
    idx = [lat[k.rsplit(".", 1)[0]].index for k in res.knobs]
    outside = np.r_[0:min(idx) + 1, max(idx) + 1:len(lat) + 1]
    # closed: no orbit outside the bump (the design orbit is zero)
    assert np.max(np.abs(np.asarray(tw.x)[outside])) < 1e-12
    assert np.max(np.abs(np.asarray(tw.y))) < 1e-15
    with pytest.raises(ValueError, match="plane"):
        orbit_bump(lat, rp, "ibpmb2r:1", plane="z")
    with pytest.raises(ValueError, match="4 correctors"):
        orbit_bump(lat, rp, "ibpmb2r:1", angle=0.0, correctors=["ca2r", "cb1r", "cb2r"])


@pytest.mark.parametrize("_", [pytest.param(0, marks=slow)])
def test_tune_knobs_and_set_tunes(_):
    lat, rp = jacc.lattices.fodo_ring()
    k = tune_knobs(lat, rp, ["kqf", "kqd"])
    assert k.matrix.shape == (2, 2) and k.matrix[0, 0] > 0 > k.matrix[1, 1]  # QF raises qx, QD lowers qy
    moved = k.apply([0.01, -0.005])
    tw = jacc.twiss(moved, rp)
    # first order in the knob change: the second-order error is ~ (0.01)^2 relative
    assert float(tw.qx) - k.values[0] == pytest.approx(0.01, rel=1e-2)
    assert float(tw.qy) - k.values[1] == pytest.approx(-0.005, rel=2e-2)
    res = set_tunes(moved, rp, 9.28, 9.16, ["kqf", "kqd"], progress=False)
    assert res.converged and res.max_residual <= 1e-10
    with pytest.raises(ValueError, match="summary"):
        jacc.correct.KnobResponse(lat, rp, ["kqf"], ("betx",))


@pytest.mark.parametrize("_", [pytest.param(0, marks=slow)])
def test_chroma_knobs(_):
    lat, rp = jacc.lattices.fodo_ring()
    k = chroma_knobs(lat, rp, ["k2f", "k2d"])
    moved = k.apply([1.0, 1.0])
    tw = jacc.twiss(moved, rp)
    # chromaticity is linear in sextupole strengths at zero orbit: exact up to rounding
    assert float(tw.dqx) - k.values[0] == pytest.approx(1.0, abs=1e-8)
    assert float(tw.dqy) - k.values[1] == pytest.approx(1.0, abs=1e-8)
