"""Xsuite and ImpactX as pipeline models (`jacc_twin.XsuiteModel`, `ImpactXModel`): the same
coordinates as JACC on the same section, gradients through their finite-difference VJPs
against JACC's automatic differentiation, and ImpactX's fallback to xtrack.

The section is the dogleg of the IOTA proton injector stand-in (c1 to bpm3: a buncher,
quadrupoles, two 30-degree bends with edges and fringe), 128 particles from the entrance
Twiss of examples/ipi_standin.madx.
"""

import pathlib
import sys

import numpy as np
import pytest

from jacc_twin import ImpactXModel, Pipeline

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
LATTICE = str(EXAMPLES / "ipi_standin.madx")
N = 128
BEAM = {"betx": 0.25, "alfx": -0.8, "bety": 0.25, "alfy": 0.8, "emitx_norm": 2.5e-7,
        "emity_norm": 2.5e-7, "sigma_t": 2e-3, "sigma_pt": 1e-4}
SECTION = {"file": LATTICE, "start": "c1", "end": "bpm3", "params": ["kq6"]}
KQ6 = 19.8535


def pipeline(kind: str, fidelity: str = "high", **model):
    return Pipeline.model_validate({
        "shared": {"fidelity": fidelity},
        "models": [{"type": "particle_source", "name": "source", "config_lattice": {"file": LATTICE},
                    "config_runtime": {"particle_shape": [N, 6]}, "config_beam": BEAM},
                   {"type": kind, "name": "dogleg", "config_lattice": SECTION,
                    "outputs": {"particles": {"type": "coordinates"}, "beam_sizes": {"type": "vector"}},
                    **model}],
        "losses": {"size": {"terms": [{"output": "beam_sizes", "index": [0, 2], "weight": 1e6}]}},
    })


@pytest.fixture(scope="module")
def jacc_pipe():
    return pipeline("jacc_tracking").setup()


@pytest.fixture(scope="module")
def xsuite_pipe():
    pytest.importorskip("xtrack")
    return pipeline("xsuite").setup()


def test_xsuite_model_tracks_like_jacc(jacc_pipe, xsuite_pipe):
    a, b = jacc_pipe.run({"kq6": 0.98 * KQ6}), xsuite_pipe.run({"kq6": 0.98 * KQ6})
    assert np.asarray(b["dogleg.particles"]).shape == (N, 6)
    # the exported line with xtrack's defaults against JACC's Xsuite() preset: rounding
    # through 17 elements at 2.5 MeV (measured 6e-13)
    np.testing.assert_allclose(np.asarray(b["particles"]), np.asarray(a["particles"]), rtol=0, atol=1e-11)


def test_xsuite_gradient_matches_finite_differences_of_the_pipeline(xsuite_pipe):
    """d size / d kq6 through the stage's custom VJP (central differences of xtrack with its
    default relative step 1e-5, then the loss's reverse mode) against central differences
    of the whole pipeline (relative step 1e-5); measured 2e-13 relative, tolerance 1e-6
    for the differences' truncation and rounding. (Against JACC's reverse mode:
    benchmarks/pipeline.py, xsuite_vjp_rel_err.)"""
    g = float(xsuite_pipe.run(grad_of="size", wrt=["kq6"])["dsize/dkq6"])
    h = 1e-5 * KQ6
    fd = (float(xsuite_pipe.run({"kq6": KQ6 + h})["size"]) - float(xsuite_pipe.run({"kq6": KQ6 - h})["size"])) / (2 * h)
    assert g != 0.0
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_impactx_tier_follows_fidelity():
    pytest.importorskip("impactx")
    low = pipeline("impactx", "low").setup().model("dogleg")
    high = pipeline("impactx", "high").setup().model("dogleg")
    assert low.stage.exporter_config.model == "linear" and high.stage.exporter_config.model == "exact"


def test_impactx_model_tracks_like_jacc(jacc_pipe):
    """ImpactX's exact elements against JACC's default (paraxial) models: the kinematic
    terms JACC leaves out, measured up to 2e-3 of the rms size (px: 1.6e-5 of 8.6e-3);
    tolerance 1e-2 of the rms size, per transverse coordinate."""
    pytest.importorskip("impactx")
    a = jacc_pipe.run()
    b = pipeline("impactx").run()
    diff = np.abs(np.asarray(b["particles"]) - np.asarray(a["particles"])).max(axis=0)[:4]
    assert np.all(diff < 1e-2 * np.asarray(a["beam_sizes"])[:4]), diff


def test_impactx_fallback_to_xsuite(jacc_pipe, monkeypatch):
    pytest.importorskip("xtrack")
    monkeypatch.setitem(sys.modules, "impactx", None)  # import impactx raises ImportError
    with pytest.raises(ImportError, match="model 'dogleg' \\(impactx\\): ImpactX is not installed.*fallback='xsuite'"):
        pipeline("impactx").run()
    with pytest.warns(UserWarning, match="running xtrack instead"):
        out = pipeline("impactx", fallback="xsuite").run({"kq6": 0.98 * KQ6})
    ref = jacc_pipe.run({"kq6": 0.98 * KQ6})
    np.testing.assert_allclose(np.asarray(out["particles"]), np.asarray(ref["particles"]), rtol=0, atol=1e-12)


def test_code_models_refuse_automatic_differentiation():
    with pytest.raises(ValueError, match="diff_mode must be one of \\['fd', 'surrogate', 'none'\\]"):
        ImpactXModel.model_validate({"name": "ix", "config_lattice": SECTION, "config_runtime": {"diff_mode": "ad"}})


def test_jacc_diagnostics_record_bpm_centroids():
    """With config_runtime.diagnostics the tracking model returns its BPMs' centroids
    (turns, monitors, 6); the triplet section ends at bpm1, so it is the exit centroid."""
    triplet = {"file": LATTICE, "end": "bpm1"}
    p = Pipeline.model_validate({"models": [
        {"type": "particle_source", "name": "source", "config_lattice": {"file": LATTICE},
         "config_runtime": {"particle_shape": [N, 6]}, "config_beam": BEAM},
        {"type": "jacc_tracking", "name": "triplet", "config_lattice": triplet,
         "config_runtime": {"diagnostics": True},
         "outputs": {"bpm_centroids": {"type": "vector"}, "centroid": {"type": "vector"}}}]})
    out = p.run()
    bpm = np.asarray(out["bpm_centroids"])
    assert bpm.shape == (1, 1, 6)
    np.testing.assert_allclose(bpm[0, 0], np.asarray(out["centroid"]), rtol=1e-12, atol=1e-18)
