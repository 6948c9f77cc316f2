"""`jacc-twin run` end to end: the command `make run` runs, in a subprocess as a user runs it."""

import json
import subprocess
import sys

import pytest

REQUIRED = ("events_per_stream", "orbit_change_rms_m", "orbit_change_vs_orm_max_abs_m", "naff_tunes",
            "model_tunes", "simulated_s", "wall_s")


@pytest.mark.slow  # a fresh process compiles the twin's orbit, tracking, ORM and optics programs
def test_jacc_twin_run_writes_its_report_and_plot(tmp_path):
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "jacc_twin.cli", "run", "--duration", "4", "--seed", "1",
           "--json", str(out), "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert all(k in rep for k in REQUIRED), sorted(rep)
    assert rep["simulated_s"] == 4.0
    # 21 BPMs at 10 Hz and 1 Hz over the half-open interval [0, 4 s)
    assert rep["events_per_stream"]["bpm.orbit_10hz"] == 21 * 40
    assert rep["events_per_stream"]["bpm.orbit_1hz"] == 21 * 4
    # a 10 urad corrector step: the true orbit moves as the ORM predicts up to second order
    # in the kick (7.8e-10 m measured)
    assert 1e-6 < rep["orbit_change_rms_m"] < 1e-4
    assert rep["orbit_change_vs_orm_max_abs_m"] < 1e-9
    for q in ("qx", "qy"):  # NAFF on 1024 turns after a 50 urad kick: ~2e-6 from the model
        assert abs(rep["naff_tunes"][q] - rep["model_tunes"][q] % 1.0) < 1e-5
    assert (tmp_path / "twin_run.png").stat().st_size > 10_000
    assert "events per stream" in done.stdout
