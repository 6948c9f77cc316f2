"""Bayesian LOCO on IOTA: NumPyro NUTS and BlackJAX on the same posterior, convergence, coverage.

The data are drawn from the prior (1% rms gradient errors) with known noise, so a correct
posterior covers the truth at its nominal rate. The whole file runs in the second step of
`make test` (``JACC_SLOW=1``): compiling and sampling the IOTA posteriors takes about five
minutes on a 2-core machine, the 10-seed coverage study two more. The samplers themselves
are also checked on a closed-form posterior in the default suite (test_calibrate_inference).
"""

import os

import matplotlib

matplotlib.use("Agg")

import blackjax
import numpy as np
import pytest

import calibrate_common
from jacc.calibrate import ErrorSpec, LocoPriors, SamplerOptions, coverage, plots

SPEC = ErrorSpec(quad_rel=0.01, orm_noise=0.05, dispersion_noise=0.01)
# started at the MAP with the Laplace covariance as the mass matrix: the warmup only tunes the
# step size, and 4 x 200 draws are enough for R-hat and ESS on a near-Gaussian posterior
OPTS = SamplerOptions(num_warmup=100, num_samples=200, num_chains=4, seed=0, progress=False,
                      adapt_mass_matrix=False)
pytestmark = pytest.mark.slow
slow = [pytest.mark.slow, pytest.mark.skipif(os.environ.get("JACC_SLOW") != "1",
                                             reason="10-seed coverage study and fixed-length HMC; run with JACC_SLOW=1")]


@pytest.fixture(scope="module")
def setup():
    sim = calibrate_common.simulator()
    bayes = calibrate_common.bayesian(SPEC.quad_rel)
    m = sim.simulate(SPEC, seed=11)
    lap = bayes.laplace(m)
    return bayes, m, lap


@pytest.fixture(scope="module")
def posteriors(setup):
    bayes, m, lap = setup
    return {"numpyro": bayes.sample_numpyro(m, OPTS, init=lap),
            "blackjax": bayes.sample_blackjax(m, OPTS, init=lap)}


def test_priors_and_data_checks(setup):
    bayes, m, _ = setup
    assert LocoPriors.from_errors(SPEC).quad_rel == 0.01
    assert bayes.sites == ["quad_errors"]
    with pytest.raises(ValueError, match="every prior rms is 0"):
        type(bayes)(None, None, m.layout, priors=LocoPriors(quad_rel=0.0), loco_model=bayes.model)
    noiseless = calibrate_common.simulator().simulate(ErrorSpec(quad_rel=0.01), seed=1)
    with pytest.raises(ValueError, match="orm_sigma > 0"):
        bayes.data(noiseless)


@pytest.mark.parametrize("which", ["numpyro", "blackjax"])
def test_posterior_converges_and_covers(posteriors, setup, which):
    bayes, m, lap = setup
    post = posteriors[which]
    s = post.summary(sites=["quad_errors"])
    assert post.samples["quad_errors"].shape == (4, 200, 39)
    assert s.rhat_max < 1.01, s.rhat_max
    assert s.ess_min > 160  # well-preconditioned NUTS on a near-Gaussian posterior: ESS ~ draws
    assert post.info["divergences"] == 0
    # near-Gaussian posterior: NUTS means agree with the Laplace approximation within a few
    # Monte Carlo standard errors, and so do the widths (the std of a std is ~std/sqrt(2 ESS))
    se = s.std / np.sqrt(s.ess)
    assert np.all(np.abs(s.mean - lap.params["quad_errors"]) < 5 * se)
    np.testing.assert_allclose(s.std, lap.std["quad_errors"], rtol=0.25)
    # one seed, 39 parameters: the 90% intervals hold most true values (binomial sd ~ 0.05)
    frac = coverage(post.flat(["quad_errors"])[1], bayes.truth(m)["quad_errors"], 0.9).mean()
    assert frac > 0.7, frac


def test_samplers_agree(posteriors):
    a = posteriors["numpyro"].summary(sites=["quad_errors"])
    b = posteriors["blackjax"].summary(sites=["quad_errors"])
    se = np.sqrt(a.std**2 / a.ess + b.std**2 / b.ess)
    assert np.all(np.abs(a.mean - b.mean) < 5 * se)
    assert posteriors["numpyro"].ess_per_s(["quad_errors"]) > 0


def test_corner_plot(posteriors, setup, tmp_path):
    bayes, m, _ = setup
    names, draws = posteriors["blackjax"].flat(["quad_errors"])
    fig = plots.corner(draws, names, truths=bayes.truth(m)["quad_errors"], max_params=4, scale=1e3, unit="1e-3")
    fig.savefig(tmp_path / "corner.png")
    assert (tmp_path / "corner.png").stat().st_size > 1000


@pytest.mark.parametrize("_", [pytest.param(0, marks=slow)])
def test_blackjax_hmc(setup, _):
    # fixed-length HMC through the same API (its closed-form check runs in the default suite
    # in test_calibrate_inference.py); here on the 39-dimensional LOCO posterior
    bayes, m, lap = setup
    post = bayes.sample_blackjax(m, OPTS, init=lap, algorithm=blackjax.hmc, num_integration_steps=5)
    assert post.sampler == "blackjax hmc"
    assert post.rhat_max(["quad_errors"]) < 1.02  # fixed-length HMC: a little slower to mix


@pytest.mark.parametrize("_", [pytest.param(0, marks=slow)])
def test_coverage_over_ten_seeds(setup, _):
    bayes, _m, _lap = setup
    sim = calibrate_common.simulator()
    ms = [sim.simulate(SPEC, seed=100 + s) for s in range(10)]
    laps = [bayes.laplace(m) for m in ms]
    opts = SamplerOptions(num_warmup=200, num_samples=500, num_chains=4, seed=1, progress=False,
                          adapt_mass_matrix=False)
    posts = bayes.sample_blackjax_many(ms, opts, inits=laps)
    inside = np.concatenate([coverage(p.flat(["quad_errors"])[1], bayes.truth(m)["quad_errors"], 0.9)
                             for p, m in zip(posts, ms)])
    # 390 parameters: a calibrated posterior gives 0.90 +- 0.015 (binomial)
    assert 0.8 <= inside.mean() <= 0.97, inside.mean()
    assert max(p.rhat_max(["quad_errors"]) for p in posts) < 1.01
    # one seed through NumPyro too: same model, same verdict
    post = bayes.sample_numpyro(ms[0], opts, init=laps[0])
    assert post.rhat_max(["quad_errors"]) < 1.01
