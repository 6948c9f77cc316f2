"""`jacc_twin.SimulationModel` and `jacc_twin.Pipeline` with JACC and a surrogate: port checks
when a pipeline is built, JSON round trip, extra inputs, processors, and gradients of a
named loss against finite differences.

The line is the IOTA proton injector stand-in (examples/ipi_standin.madx, 2.5 MeV protons)
with 256 particles from its entrance Twiss; the surrogate is a tiny network (16 hidden
units, 100 steps) trained on beams JACC tracked, enough for its outputs to depend on its
inputs.
"""

import json
import pathlib

import jax
import numpy as np
import pytest
from pydantic import ValidationError

import jacc
import jacc.surrogate
from jacc_twin import JaccTrackingModel, ParticleSource, Pipeline, SimulationModel
from jacc_twin.models._observables import MOMENT_NAMES

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
LATTICE = str(EXAMPLES / "ipi_standin.madx")
N = 256
BEAM = {"betx": 0.25, "alfx": -0.8, "bety": 0.25, "alfy": 0.8, "emitx_norm": 2.5e-7,
        "emity_norm": 2.5e-7, "sigma_t": 2e-3, "sigma_pt": 1e-4}
OUTPUTS = ("x_bpm4", "y_bpm4", "sigma_x_bpm4", "sigma_y_bpm4")


def source(**kw):
    spec = {"type": "particle_source", "name": "source", "config_lattice": {"file": LATTICE},
            "config_runtime": {"particle_shape": [N, 6]}, "config_beam": BEAM,
            "outputs": {"particles": {"type": "coordinates"}}}
    return {**spec, **kw}


def dogleg(**kw):
    spec = {"type": "jacc_tracking", "name": "dogleg",
            "config_lattice": {"file": LATTICE, "start": "c1", "end": "bpm3", "params": ["kq6"]},
            "outputs": {"particles": {"type": "coordinates"}, "beam_moments": {"type": "vector"}}}
    return {**spec, **kw}


@pytest.fixture(scope="module")
def surrogate_file(tmp_path_factory):
    """A tiny surrogate from beam moments at c2 to four numbers, trained on jittered beams."""
    pipe = Pipeline.model_validate({"models": [source(), dogleg()]})
    m0 = np.asarray(pipe.run()["beam_moments"])
    rng = np.random.default_rng(1)
    X = m0 * (1 + 0.1 * rng.standard_normal((64, m0.size)))
    W = rng.standard_normal((m0.size, 4))
    Y = np.tanh(((X - m0) / (np.abs(m0) + 1e-12)) @ W / 10) * 1e-3
    sur, _ = jacc.surrogate.fit(X, Y, MOMENT_NAMES, OUTPUTS, hidden=(16,), steps=100, progress=False)
    path = tmp_path_factory.mktemp("surrogate") / "diag.eqx"
    jacc.surrogate.save(sur, path)
    return path


def three_stage(surrogate_path, **shared):
    """source -> JACC (kq6 as a current through a processor) -> surrogate, with a loss."""
    kq6 = {"type": "scalar", "unit": "A", "processors": [{"type": "offset_multiply", "offset": 0.5,
                                                           "multiply": 0.2}]}
    return {
        "name": "three_stage", "shared": shared,
        "models": [source(inputs={"emitx_norm": {"type": "scalar"}}),
                   dogleg(inputs={"particles": {"type": "coordinates"}, "kq6": kq6}),
                   {"type": "surrogate", "name": "diagnostics",
                    "config_runtime": {"eqx_pytree_file_path": str(surrogate_path)},
                    "inputs": {"beam_moments": {"type": "vector", "shape": [27]}}}],
        "inputs": {"kq6": 19.8535 / 0.2 - 0.5},
        "losses": {"spot": {"terms": [{"output": "sigma_x_bpm4", "target": 1e-3, "weight": 1e6},
                                      {"output": "sigma_y_bpm4", "weight": 1e6}]}},
    }


@pytest.fixture(scope="module")
def pipe(surrogate_file):
    return Pipeline.model_validate(three_stage(surrogate_file)).setup()


# ---------------------------------------------------------------- checks when built

def _refused(spec, *names):
    with pytest.raises(ValidationError) as err:
        Pipeline.model_validate(spec)
    msg = str(err.value)
    for n in names:
        assert n in msg, msg
    return msg


def test_type_mismatch_refused_naming_both_ports(surrogate_file):
    sur = {"type": "surrogate", "name": "diag", "config_runtime": {"eqx_pytree_file_path": str(surrogate_file)},
           "inputs": {"particles": {"type": "vector", "shape": [27]}}}
    msg = _refused({"models": [source(), sur]}, "'source.particles'", "'diag.particles'")
    assert "'coordinates' != 'vector'" in msg


def test_coordinate_system_mismatch_refused():
    src = source(outputs={"particles": {"type": "coordinates", "coordinate_system": "impactx"}})
    msg = _refused({"models": [src, dogleg()]}, "'source.particles'", "'dogleg.particles'")
    assert "coordinate system 'impactx' != 'madx'" in msg


def test_reference_particle_mismatch_refused():
    electron = jacc.ReferenceParticle.from_kinetic_energy("electron", 150e6).model_dump()
    src = source(config_lattice={"file": LATTICE, "reference_particle": electron})
    msg = _refused({"models": [src, dogleg()]}, "'source.particles'", "'dogleg.particles'")
    assert "reference particle (electron" in msg and "(proton" in msg


def test_particle_count_mismatch_refused():
    track = dogleg(config_runtime={"particle_shape": [N + 1, 6]})
    _refused({"models": [source(), track]}, "'source.particles'", "'dogleg.particles'", "shape")


def test_unknown_model_type_refused(surrogate_file):
    spec = json.loads(json.dumps(three_stage(surrogate_file)))
    spec["models"][1]["type"] = "elegant"
    msg = _refused(spec, "'elegant'", "jacc_tracking", "surrogate")
    assert "does not match any of the expected tags" in msg


def test_missing_surrogate_file_refused(tmp_path):
    spec = three_stage("missing_surrogate.eqx")
    with pytest.raises(ValidationError) as err:
        Pipeline.model_validate_json(json.dumps(spec), context={"base_dir": tmp_path})
    msg = str(err.value)
    assert "'diagnostics'" in msg and "'missing_surrogate.eqx': no such file" in msg
    assert str(tmp_path) in msg


def test_unknown_output_and_input_refused():
    with pytest.raises(ValidationError, match="unknown output 'tunes'.*beam_sizes"):
        JaccTrackingModel.model_validate(dogleg(outputs={"tunes": {"type": "vector"}}))
    with pytest.raises(ValidationError, match="unknown input 'kq5'"):
        JaccTrackingModel.model_validate(dogleg(inputs={"particles": {"type": "coordinates"},
                                                        "kq5": {"type": "scalar"}}))


# ---------------------------------------------------------------- running

def test_external_inputs_and_walltime(pipe):
    assert pipe.external_inputs == {"emitx_norm": ["source.emitx_norm"], "kq6": ["dogleg.kq6"]}
    out = pipe.run()
    for m in ("source", "dogleg", "diagnostics"):
        assert float(out[f"{m}.walltime"]) > 0
    assert float(out["walltime"]) >= sum(float(out[f"{m}.walltime"]) for m in ("source", "dogleg"))
    assert set(OUTPUTS) <= set(out) and np.shape(out["spot"]) == ()


def test_input_defaults(pipe):
    d = pipe.input_defaults()
    assert float(d["kq6"]) == 19.8535 / 0.2 - 0.5  # the pipeline's inputs
    assert float(d["emitx_norm"]) == 2.5e-7  # the source's configuration


def test_processor_maps_current_to_strength(pipe):
    """kq6 = (I + 0.5) * 0.2: the pipeline with I equals JACC tracking with that kq6."""
    out = pipe.run({"kq6": 95.0})
    direct = Pipeline.model_validate({"models": [source(), dogleg()]}).run({"kq6": (95.0 + 0.5) * 0.2})
    np.testing.assert_array_equal(np.asarray(out["dogleg.beam_moments"]), np.asarray(direct["beam_moments"]))


def test_json_round_trip_gives_identical_outputs(pipe, surrogate_file):
    text = pipe.model_dump_json(indent=1)
    again = Pipeline.model_validate_json(text)
    assert again.model_dump_json(indent=1) == text
    assert [type(m).__name__ for m in again.models] == ["ParticleSource", "JaccTrackingModel", "SurrogateModel"]
    a, b = pipe.run({"kq6": 97.0}), again.run({"kq6": 97.0})
    for k in list(OUTPUTS) + ["spot", "particles", "dogleg.beam_moments"]:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def test_model_json_round_trip(surrogate_file):
    from jacc_twin import model_from_json

    m = ParticleSource.model_validate(source())
    again = model_from_json(m.model_dump_json())
    assert isinstance(again, ParticleSource) and again == m
    assert isinstance(again, SimulationModel)


@pytest.mark.parametrize("behavior", ["passthrough", "ignore", "error"])
def test_extra_inputs_behavior(behavior):
    m = ParticleSource.model_validate(source(extra_inputs_behavior=behavior))
    if behavior == "error":
        with pytest.raises(ValueError, match=r"inputs \['note'\] are not declared"):
            m.run({"note": 1.0})
        return
    out = m.run({"note": 1.0})
    assert ("note" in out) == (behavior == "passthrough")
    assert out["particles"].shape == (N, 6)


def test_gradients_match_finite_differences(pipe):
    """d spot / d (kq6 current, emitx_norm): reverse mode through the surrogate, JACC and
    the source against central differences of the pipeline (step 1e-5 relative; measured
    agreement 1e-9, tolerance 1e-6 for the differences' truncation and rounding)."""
    base = {"kq6": 19.8535 / 0.2 - 0.5, "emitx_norm": 2.5e-7}
    out = pipe.run(base, grad_of="spot", wrt=list(base))
    assert np.isfinite(float(out["spot"]))
    for name, v0 in base.items():
        h = 1e-5 * v0
        fd = (float(pipe.run({**base, name: v0 + h})["spot"]) - float(pipe.run({**base, name: v0 - h})["spot"])) / (2 * h)
        g = float(out[f"dspot/d{name}"])
        assert g != 0.0
        np.testing.assert_allclose(g, fd, rtol=1e-6, err_msg=name)


def test_gradient_refused_through_a_model_without_derivatives(surrogate_file):
    spec = three_stage(surrogate_file)
    spec["models"][1]["config_runtime"] = {"diff_mode": "none"}
    p = Pipeline.model_validate(spec)
    with pytest.raises(ValueError, match=r"cannot differentiate through \['dogleg \(jacc_tracking\)'\]"):
        p.run(grad_of="spot", wrt=["kq6"])


def test_space_charge_refused_at_setup():
    m = JaccTrackingModel.model_validate(dogleg(config_runtime={"space_charge": True}))
    with pytest.raises(NotImplementedError, match="model 'dogleg' \\(jacc_tracking\\): space charge"):
        m.setup()


def test_vector_shapes_checked_when_built(surrogate_file):
    sur = {"type": "surrogate", "name": "diag", "config_runtime": {"eqx_pytree_file_path": str(surrogate_file)},
           "inputs": {"centroid": {"type": "vector", "shape": [27]}}}
    track = dogleg(outputs={"centroid": {"type": "vector"}})
    msg = _refused({"models": [source(), track, sur]}, "'dogleg.centroid'", "'diag.centroid'")
    assert "shape [6] != [27]" in msg


def test_extra_inputs_not_allowed():
    m = ParticleSource.model_validate(source(extra_inputs_allowed=False))
    with pytest.raises(ValueError, match=r"model 'source': inputs \['kq6'\] are not declared"):
        m.run({"kq6": 1.0})


def test_without_jit_same_particles():
    jitted = ParticleSource.model_validate(source()).run({})
    eager = ParticleSource.model_validate(source(config_runtime={"particle_shape": [N, 6], "use_jit": False})).run({})
    np.testing.assert_allclose(np.asarray(eager["particles"]), np.asarray(jitted["particles"]), rtol=1e-14, atol=0)
