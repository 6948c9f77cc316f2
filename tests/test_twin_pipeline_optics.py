"""`jacc_twin.JaccOpticsModel`: Twiss functions and the beam envelope through a lattice
section, chained section to section, against tracked particles.

At low fidelity every element is its exact matrix (`jacc.Linear()`), so the envelope
``M S M^T`` equals the covariance of the tracked particles to rounding, and a beam without
energy spread has ``sigma_x^2 = emit_x betx`` at every point.
"""

import pathlib

import numpy as np
import pytest

import jacc
from jacc_twin import JaccOpticsModel, Pipeline

LATTICE = str(pathlib.Path(__file__).resolve().parents[1] / "examples" / "ipi_standin.madx")
TWISS0 = dict(betx=0.25, alfx=-0.8, bety=0.25, alfy=0.8)


def section(name, kind, start=None, end=None, **kw):
    return {"type": kind, "name": name, "config_lattice": {"file": LATTICE, "start": start, "end": end}, **kw}


@pytest.fixture(scope="module")
def beam():
    lat = jacc.Lattice.from_madx(LATTICE)
    rp = jacc.lattices.reference_from_beam(lat)
    emit = 0.25e-6 / (rp.beta0 * rp.gamma0)
    env = jacc.Envelope.from_twiss(TWISS0["betx"], TWISS0["alfx"], emit, TWISS0["bety"], TWISS0["alfy"],
                                   emit, 0.0, 0.0)
    x = np.random.default_rng(2).multivariate_normal(np.zeros(6), np.asarray(env.sigma), 500, method="eigh")
    return x, emit, rp


@pytest.fixture(scope="module")
def optics():
    """Two optics sections chained (entrance to bpm1, then to the end), low fidelity."""
    ports = {"twiss": {"type": "twiss"}, "envelope": {"type": "envelope"}}
    first = section("front", "jacc_optics", end="bpm1", inputs=ports, outputs=dict(ports))
    rest = section("rest", "jacc_optics", start="c1", inputs=ports,
                   outputs={**ports, "twiss_table": {"type": "twiss"}, "beam_sizes": {"type": "vector"}})
    return Pipeline.model_validate({"shared": {"fidelity": "low"}, "models": [first, rest]})


def test_envelope_equals_tracked_covariance(optics, beam):
    x, _, rp = beam
    env = jacc.PhaseSpace.from_array(x, rp).envelope()
    out = optics.run({"envelope": env, "twiss": jacc.TwissInit(**TWISS0)})
    track = Pipeline.model_validate({"shared": {"fidelity": "low"}, "models": [section(
        "front", "jacc_tracking", end="bpm1", outputs={"covariance": {"type": "vector"},
                                                       "centroid": {"type": "vector"}})]})
    ref = track.run({"particles": x})
    # the same linear maps both ways: rounding (measured 1e-21 m^2 on 1e-6 m^2)
    np.testing.assert_allclose(np.asarray(out["front.envelope"].sigma), np.asarray(ref["covariance"]),
                               rtol=1e-10, atol=1e-18)
    np.testing.assert_allclose(np.asarray(out["front.envelope"].mean), np.asarray(ref["centroid"]),
                               rtol=0, atol=1e-15)
    sizes = np.sqrt(np.diag(np.asarray(out["envelope"].sigma)))
    np.testing.assert_allclose(np.asarray(out["beam_sizes"]), sizes, rtol=1e-14)


def test_twiss_chains_and_matches_the_envelope(optics, beam):
    _, emit, _ = beam
    env = jacc.Envelope.from_twiss(TWISS0["betx"], TWISS0["alfx"], emit, TWISS0["bety"], TWISS0["alfy"],
                                   emit, 0.0, 0.0)
    out = optics.run({"envelope": env, "twiss": jacc.TwissInit(**TWISS0)})
    tw, s = out["twiss"], np.asarray(out["envelope"].sigma)
    assert isinstance(tw, jacc.TwissInit) and isinstance(out["twiss_table"], jacc.TwissTable)
    assert out["twiss_table"].name[0].endswith("$start") and len(out["twiss_table"].name) == 27
    # without energy spread, sigma = emit * [[beta, -alpha], [-alpha, gamma]] (measured 1e-15 relative)
    np.testing.assert_allclose([s[0, 0], s[0, 1], s[2, 2], s[2, 3]],
                               [emit * float(tw.betx), -emit * float(tw.alfx), emit * float(tw.bety),
                                -emit * float(tw.alfy)], rtol=1e-9)
    # the second section starts from the first's exit
    assert float(out["front.twiss"].betx) == pytest.approx(float(out["twiss_table"].betx[0]), rel=1e-14)


def test_optics_outputs_need_their_inputs():
    with pytest.raises(ValueError, match="outputs 'twiss'/'twiss_table' need a 'twiss' input"):
        JaccOpticsModel.model_validate(section("o", "jacc_optics", outputs={"twiss": {"type": "twiss"}}))
