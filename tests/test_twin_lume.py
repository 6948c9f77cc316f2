"""The twin's LUME face (lume-base 0.6), its Badger environment, and an Xopt run through it."""

import numpy as np
import pytest

pytest.importorskip("lume")

from jacc_twin.badger import Environment  # noqa: E402
from jacc_twin.iota import IotaTwin  # noqa: E402
from jacc_twin.lume import TwinLUMEModel  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return TwinLUMEModel(IotaTwin(errors_seed=3))


def test_supported_variables_follow_the_name_table(model):
    from lume.variables import ScalarVariable

    from jacc_twin.names import variables

    sv = model.supported_variables
    assert all(isinstance(v, ScalarVariable) for v in sv.values())
    assert sv["HCA1R:SETTING"].value_range == (-10.0, 10.0) and not sv["HCA1R:SETTING"].read_only
    assert sv["IBPMA1:X"].read_only and sv["IBPMA1:X"].unit == "m"
    assert set(sv) == {n for n, v in variables().items() if v.kind != "waveform"}


def test_set_out_of_range_raises_and_changes_nothing(model):
    model.reset()
    with pytest.raises(ValueError, match="out of valid range"):
        model.set({"HCA1R:SETTING": 10.5})
    assert model.get_value("HCA1R:SETTING") == 0.0
    with pytest.raises(Exception, match="read-only"):
        model.set({"IBPMA1:X": 0.0})


def test_get_unknown_raises(model):
    with pytest.raises(ValueError, match="not supported"):
        model.get(["NOT:A_VARIABLE"])
    with pytest.raises(TypeError):
        model.get("IBPMA1:X")  # lume-base 0.6: a list of names


def test_reset_restores_the_initial_state(model):
    model.reset()
    settings = model.get(["HCA1R:SETTING", "KQ05:SETTING"])
    orbit = model.twin.orbit()[0].copy()
    model.set({"HCA1R:SETTING": 1.5, "KQ05:SETTING": settings["KQ05:SETTING"] * 1.001})
    assert model.get_value("HCA1R:SETTING") == 1.5
    model.reset()
    assert model.get(["HCA1R:SETTING", "KQ05:SETTING"]) == settings
    # the same closed orbit, up to the Newton search's stopping mismatch (1e-14 m)
    np.testing.assert_allclose(model.twin.orbit()[0], orbit, atol=1e-13)


def test_badger_environment(model):
    env = Environment(twin=model.twin, observables=["IBPMA1:X", "ORBIT:RMS_X"])
    assert env.variables["HCA1R:SETTING"] == [-10.0, 10.0]
    env.set_variables({"HCA1R:SETTING": 0.5})
    assert env.get_variables(["HCA1R:SETTING"]) == {"HCA1R:SETTING": 0.5}
    obs = env.get_observables(["ORBIT:RMS_X"])
    assert obs["ORBIT:RMS_X"] > 0
    with pytest.raises(ValueError, match="unknown observables"):
        env.get_observables(["TIMER:COUNT"])
    env.reset_environment()
    assert env.get_variables(["HCA1R:SETTING"]) == {"HCA1R:SETTING": 0.0}


def test_xopt_reduces_rms_orbit_tenfold(model):
    pytest.importorskip("xopt")
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "xopt_iota_orbit.py"
    spec = importlib.util.spec_from_file_location("xopt_iota_orbit", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    model.reset()
    before, after, best = ex.optimise(model, steps=60)
    # two correctors, two BPM readings: the optimum is zero up to the BPM noise (2 um rms)
    assert before > 1e-4
    assert after < before / 10, (before, after, best)
    model.reset()
