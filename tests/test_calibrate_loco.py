"""ORM and LOCO on IOTA: the response against the optics layer and finite differences, the
fast linear response against jacfwd of the closed orbit, LOCO recovery and noise floor."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import calibrate_common
import jacc
from jacc.calibrate import (ErrorSpec, LinearResponse, Loco, LocoOptions, MeasurementSimulator,
                            OrbitResponse, draw_errors, quad_knobs, select_layout)

slow = [pytest.mark.slow, pytest.mark.skipif(os.environ.get("JACC_SLOW") != "1",
                                             reason="compile-heavy check; run with JACC_SLOW=1")]
SPEC_CAL = ErrorSpec(quad_rel=0.01, bpm_gain=0.02, bpm_roll=2e-3, corrector_gain=0.02)


@pytest.fixture(scope="module")
def iota():
    return calibrate_common.iota()


@pytest.fixture(scope="module")
def sim(iota):
    return calibrate_common.simulator()


@pytest.fixture(scope="module")
def fit(iota, sim):
    lat, rp, _ = iota
    return Loco(lat, rp, sim.layout, options=LocoOptions(progress=False))


def test_layout(iota):
    lat, rp, corr = iota
    lay = select_layout(lat, correctors=corr)
    assert lay.n_bpms == 21 and len(lay.hcorrectors) == len(lay.vcorrectors) == 20
    assert lay.shape == (42, 40) and lay.kick_keys[0] == "ca1r:1.xangle"
    assert len(select_layout(lat).vcorrectors) == 22  # the two injection VKickers by default
    with pytest.raises(ValueError, match=r"unknown corrector 'cx1r'.*valid"):
        select_layout(lat, correctors=["cx1r"])
    with pytest.raises(ValueError, match="not one of the BPM types"):
        select_layout(lat, bpms=["qa1r"])


def test_closed_orbit_and_dispersion_agree_with_optics(iota, sim):
    """A kicked lattice: our closed orbit at the BPMs vs `jacc.twiss` (the optics layer)."""
    lat, rp, _ = iota
    kicked = lat.copy()
    kicked.set_knob("hk_sqb1r", 2e-4)
    kicked.set_knob("vk_sqc2l", -1e-4)
    resp = sim.response  # compiled with the kicks as parameters: set them in `dynamic`
    d = resp.with_kicks(resp.dynamic, resp.kicks().at[resp.kick_keys.index("cb1r:1.xangle")].set(2e-4)
                        .at[resp.kick_keys.index("cc2l:1.yangle")].set(-1e-4))
    co = np.asarray(jax.jit(resp.bpm_orbit)(d))
    tw = jacc.twiss(kicked, rp, model=jacc.XsuiteExactBend())
    rows = np.asarray(sim.layout.bpm_index) + 1
    # two Newton solutions of the same map: rounding level (orbits ~1e-4 m)
    np.testing.assert_allclose(co, np.concatenate([tw.x[rows], tw.y[rows]]), rtol=0, atol=1e-14)
    assert resp.converged(d)
    d = np.asarray(jax.jit(resp.dispersion)(d))
    # dispersion about the kicked orbit (4D, RF off in both): AD in delta on both sides
    np.testing.assert_allclose(d, np.concatenate([tw.dx[rows], tw.dy[rows]]), rtol=0, atol=1e-9)


def test_orm_by_jacfwd_against_finite_differences(sim):
    resp = sim.response
    m = np.asarray(jax.jit(resp.orm)(resp.dynamic))
    orbit = jax.jit(resp.bpm_orbit)
    k0 = resp.kicks()
    h = 1e-6
    for j in (0, 7, 20, 33):
        e = jnp.zeros_like(k0).at[j].set(h)
        fd = (np.asarray(orbit(resp.dynamic, k0 + e)) - np.asarray(orbit(resp.dynamic, k0 - e))) / (2 * h)
        # central differences: truncation ~ h^2 x (sextupole feed-down) ~ 1e-10 relative
        np.testing.assert_allclose(m[:, j], fd, rtol=0, atol=1e-7 * np.max(np.abs(m)))


def test_linear_response_equals_jacfwd_of_closed_orbit(iota, sim):
    lat, _, _ = iota
    lin = LinearResponse(sim.response)  # the simulator's response has the gradients as parameters
    truth = draw_errors(lat, ErrorSpec(quad_rel=0.01), 5, layout=sim.layout)
    d = sim.dynamic(truth)
    ref = np.asarray(sim._orm(d))
    # two exact derivatives of the same maps: rounding level relative to ORM entries ~ 2 m
    np.testing.assert_allclose(np.asarray(jax.jit(lin.orm)(d)), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(lin.dispersion)(d)), np.asarray(sim._disp(d)),
                               rtol=0, atol=1e-12)
    assert np.max(np.abs(ref - np.asarray(jax.jit(lin.orm)(lin.dynamic)))) > 1e-3  # the errors do change the ORM


def test_loco_recovers_gradient_errors_noise_free(sim, fit):
    m = sim.simulate(SPEC_CAL, seed=1)
    res = fit.fit(m)
    true = m.truth.quad_rel
    err = res.quad_errors - true
    rms_true = np.sqrt(np.mean(true**2))
    # issue criterion: better than 5% of the rms error; noise-free, an exact model: far better
    assert np.sqrt(np.mean(err**2)) < 0.05 * rms_true
    assert np.sqrt(np.mean(err**2)) < 1e-4 * rms_true, np.sqrt(np.mean(err**2)) / rms_true
    # the vertical mean-1 gain constraint is a slight model restriction once rolls couple the
    # planes (the degeneracy is only approximate): residuals stay at ~1e-6 of the ORM
    assert res.converged and res.residual_rms < 1e-5 * np.sqrt(np.mean(m.orm**2))
    # the horizontal gain scale is fixed by the dispersion: true gains come back
    np.testing.assert_allclose(1 + res.params["bpm_gain_x"], m.truth.bpm_gain_x, atol=1e-6)
    # rolls absorb a little of the vertical constraint's restriction (~0.1% of 2 mrad)
    np.testing.assert_allclose(res.params["bpm_roll"], m.truth.bpm_roll, atol=1e-5)
    # vertically the gains come back up to the common scale fixed by the mean-1 constraint
    a = np.mean(m.truth.corrector_gain_v)
    np.testing.assert_allclose(1 + res.params["corrector_gain_v"], m.truth.corrector_gain_v / a, atol=1e-4)
    assert "LOCO: converged" in str(res)
    # the fitted lattice carries the errors: its ORM is the true one
    assert res.lattice["qa1r:1"].k1 == pytest.approx(fit.model.k0[0] * (1 + res.quad_errors[0]), rel=1e-14)


def test_loco_reaches_the_noise_floor(sim, fit):
    spec = ErrorSpec(quad_rel=0.01, bpm_gain=0.02, bpm_roll=2e-3, corrector_gain=0.02,
                     orm_noise=0.02, dispersion_noise=5e-3)
    m = sim.simulate(spec, seed=2)
    res = fit.fit(m)
    # chi2/dof of a fit at the noise floor is 1 +- sqrt(2/dof) (0.035 here): 4 sigma
    assert abs(res.chi2 / res.dof - 1.0) < 0.14, res.chi2 / res.dof
    assert res.residual_rms == pytest.approx(0.02, rel=0.1)
    # fitted - true, in units of the fit's own uncertainties: rms ~ 1 for honest errors
    pull = (res.quad_errors - m.truth.quad_rel) / res.std["quad_errors"]
    assert 0.6 < np.sqrt(np.mean(pull**2)) < 1.5
    # the time of a fit (target: < 10 s after compile) is measured by benchmarks/calibration.py


@pytest.mark.parametrize("_", [pytest.param(0, marks=slow)])
def test_loco_per_knob(iota, _):
    lat, rp, corr = iota
    knobs = quad_knobs(lat)
    assert [v.name for v in knobs[:3]] == ["kq01", "kq02", "kq03"] and len(knobs) == 20
    sim = MeasurementSimulator(lat, rp, quads=knobs, correctors=corr)
    m = sim.simulate(ErrorSpec(quad_rel=0.01), seed=3, dispersion=False)
    fit = Loco(lat, rp, m.layout, quads=knobs,
               options=LocoOptions(bpm_gains=False, bpm_rolls=False, corrector_gains=False,
                                   dispersion=False, progress=False))
    res = fit.fit(m)
    # an exact model with as many errors as knobs: recovered to the solver's precision
    np.testing.assert_allclose(res.quad_errors, m.truth.quad_rel, rtol=0, atol=1e-8)
    assert res.lattice.knobs["kq01"].value == pytest.approx(lat.knobs["kq01"].value * (1 + res.quad_errors[0]))


def test_bad_input(iota, sim):
    lat, rp, _ = iota
    with pytest.raises(ValueError, match="quad_rel must be a finite rms"):
        ErrorSpec(quad_rel=-0.1)
    with pytest.raises(ValueError, match="unknown element 'qz1r'"):
        MeasurementSimulator(lat, rp, quads=["qz1r.k1"])
    m = sim.simulate(ErrorSpec(), seed=0, dispersion=False)
    fit = Loco(lat, rp, select_layout(lat), options=LocoOptions(progress=False, quads=True))
    with pytest.raises(ValueError, match="layout"):
        fit.fit(m)
