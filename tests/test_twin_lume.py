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
    env = Environment(twin=model.twin)
    assert env.variables["HCA1R:SETTING"] == [-10.0, 10.0]
    assert "ORBIT:RMS_X" in env.observables and "HCA1R:SETTING" not in env.observables
    env.set_variables({"HCA1R:SETTING": 0.5})
    assert env.get_variables(["HCA1R:SETTING"]) == {"HCA1R:SETTING": 0.5}
    obs = env.get_observables(["ORBIT:RMS_X"])
    assert obs["ORBIT:RMS_X"] > 0
    with pytest.raises(ValueError, match="unknown observables"):
        env.get_observables(["NOT:A_VARIABLE"])
    env.reset_environment()
    assert env.get_variables(["HCA1R:SETTING"]) == {"HCA1R:SETTING": 0.0}


def test_badger_loads_and_drives_the_plugin(model, tmp_path, monkeypatch):
    """Through Badger's own plugin loader and environment base (badger-opt): the plugin
    folder is found, its bounds read without building a twin, setpoints outside them
    refused by Badger, formula observables evaluated by Badger."""
    pytest.importorskip("badger")
    import sys

    from jacc_twin.badger import HAVE_BADGER, write_plugin

    root = tmp_path / "plugins"
    write_plugin(root)
    from badger import environment as benv
    from badger.settings import init_settings

    cfg = init_settings()  # Badger's settings singleton: its plugin root is ours (no user file written)
    read = cfg.read_value
    monkeypatch.setattr(cfg, "read_value", lambda key, *a, **k: str(root) if key == "BADGER_PLUGIN_ROOT"
                        else read(key, *a, **k))
    from badger import factory

    monkeypatch.setattr(factory, "BADGER_PLUGIN_ROOT", str(root))
    from badger.errors import BadgerEnvVarError

    assert HAVE_BADGER and issubclass(Environment, benv.Environment)
    monkeypatch.syspath_prepend(str(root))
    sys.modules.pop("environments", None)
    cls, configs = factory.load_plugin(str(root), "jacc_iota_twin", "environment")
    assert cls is Environment
    assert {"HCA1R:SETTING": [-10.0, 10.0]} in configs["variables"]
    assert "ORBIT:RMS_X" in configs["observations"]
    assert configs["params"]["errors_seed"] is None and configs["params"]["species"] == "electron"
    env = benv.instantiate_env(cls, configs)
    assert env._model is None  # not built yet
    env.twin = model.twin
    env.reset_environment()
    env.set_variables({"HCA1R:SETTING": 0.5, "VCA1R:SETTING": -0.25})
    assert env.get_variables(["HCA1R:SETTING", "VCA1R:SETTING"]) == {"HCA1R:SETTING": 0.5, "VCA1R:SETTING": -0.25}
    with pytest.raises(BadgerEnvVarError, match="outside"):
        env.set_variables({"HCA1R:SETTING": 11.0})
    assert env.get_variable("HCA1R:SETTING") == 0.5
    rms = env.get_observables(["ORBIT:RMS_X", "ORBIT:RMS_Y"])
    both = env.get_observables(["`ORBIT:RMS_X` + `ORBIT:RMS_Y`"])
    assert list(both) == ["`ORBIT:RMS_X` + `ORBIT:RMS_Y`"]
    assert both["`ORBIT:RMS_X` + `ORBIT:RMS_Y`"] == pytest.approx(rms["ORBIT:RMS_X"] + rms["ORBIT:RMS_Y"], rel=1e-12)
    env.reset_environment()
    assert env.get_variable("HCA1R:SETTING") == 0.0


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
