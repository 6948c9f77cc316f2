"""``jacc-twin pipeline``: the example pipeline (examples/ipi_pipeline.json: ImpactX, JACC and
a surrogate on the IOTA proton injector stand-in) run as a command in a fresh process, from
another folder (its relative lattice and surrogate paths resolve against the file's
folder), with gradients; and the command's errors."""

import json
import pathlib
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from jacc_twin import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "ipi_pipeline.json"


def test_console_script_is_declared():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["jacc-twin"] == "jacc_twin.cli:main"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("xtrack")  # the ImpactX stage falls back to xtrack without ImpactX
    folder = tmp_path_factory.mktemp("cli")
    out = folder / "out" / "ipi.json"
    cmd = [sys.executable, "-m", "jacc_twin.cli", "pipeline", str(EXAMPLE), "--json", str(out),
           "--grad", "spot_size", "--wrt", "kq3", "kq6", "--set", "kq6=19.5"]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_cli_writes_outputs_and_gradients(report):
    data, stdout = report
    assert data["pipeline"] == "ipi_three_stage" and data["grad_of"] == "spot_size"
    assert data["wrt"] == ["kq3", "kq6"]
    outputs = data["outputs"]
    for name in ("x_bpm4", "y_bpm4", "sigma_x_bpm4", "sigma_y_bpm4", "spot_size", "walltime",
                 "triplet.walltime", "dogleg.walltime", "diagnostics.walltime"):
        assert np.isfinite(outputs[name]), name
    # spot_size = 1e6 (sigma_x^2 + sigma_y^2), in mm^2
    assert outputs["spot_size"] == pytest.approx(1e6 * (outputs["sigma_x_bpm4"] ** 2 + outputs["sigma_y_bpm4"] ** 2))
    assert outputs["particles"]["shape"] == [2000, 6] and outputs["particles"]["summary"]
    assert len(outputs["dogleg.beam_moments"]) == 27
    grads = data["gradients"]
    assert set(grads) == {"dspot_size/dkq3", "dspot_size/dkq6"}
    assert all(np.isfinite(v) and v != 0.0 for v in grads.values())
    assert "spot_size =" in stdout and "dspot_size/dkq6 =" in stdout


def test_cli_records_inputs_and_times(report):
    data, _ = report
    assert data["inputs"] == {"kq6": 19.5}
    assert data["command_s"] > data["outputs"]["walltime"] > data["outputs"]["dogleg.walltime"] > 0


def test_cli_refuses_unknown_model_type(tmp_path, capsys):
    spec = json.loads(EXAMPLE.read_text())
    spec["models"][2]["type"] = "elegant"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(spec))
    assert cli.main(["pipeline", str(bad), "--json", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert "error" in err and "'elegant'" in err and "jacc_tracking" in err
    assert not (tmp_path / "out.json").exists()


def test_cli_refuses_missing_surrogate(tmp_path, capsys):
    spec = json.loads(EXAMPLE.read_text())
    (tmp_path / "ipi_standin.madx").write_text((EXAMPLE.parent / "ipi_standin.madx").read_text())
    bad = tmp_path / "no_surrogate.json"
    bad.write_text(json.dumps(spec))  # ipi_diagnostic_surrogate.eqx is not beside it
    assert cli.main(["pipeline", str(bad), "--json", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert "'ipi_diagnostic_surrogate.eqx': no such file" in err and str(tmp_path) in err


def test_cli_without_a_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "pipeline" in capsys.readouterr().err
