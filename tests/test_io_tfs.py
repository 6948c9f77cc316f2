"""TFS tables: MAD-X's Twiss TFS read into JACC's Twiss, Twiss and survey written, tfs-pandas reads them."""

import os

import numpy as np
import pytest

import jacc
from jacc.lattice import LatticeError
from jacc.lattice.io_tfs import (TfsTable, read_tfs, read_tfs_twiss, survey_to_tfs,
                                 twiss_to_tfs, write_tfs)
from jacc.lattices import data_path

cpymad = pytest.importorskip("cpymad.madx")
HERE = os.path.dirname(__file__)
FODO = os.path.join(HERE, "data", "interop", "fodo.madx")
COLS = ("s", "betx", "bety", "alfx", "alfy", "mux", "muy", "dx", "dpx", "x", "px")


@pytest.fixture(scope="module")
def madx_twiss_file(tmp_path_factory):
    """MAD-X writes its Twiss of the FODO ring as TFS; its table is copied (a live view)."""
    path = tmp_path_factory.mktemp("tfs") / "twiss.tfs"
    m = cpymad.Madx(stdout=False)
    m.call(FODO)
    t = m.twiss(file=str(path))
    ref = {c: np.array(t[c]).copy() for c in COLS}
    ref["q1"], ref["dq1"] = float(m.table.summ.q1[0]), float(m.table.summ.dq1[0])
    ref["beta0"] = float(m.sequence.ring.beam.beta)
    m.quit()
    return path, ref


def test_read_madx_twiss_into_twiss(madx_twiss_file):
    path, ref = madx_twiss_file
    tw = read_tfs_twiss(path)
    assert isinstance(tw, jacc.Twiss) and tw.name[0] == "ring$start"
    for c in COLS:
        scale = ref["beta0"] if c in ("dx", "dpx") else 1.0   # MAD-X per pt, JACC per delta
        np.testing.assert_allclose(np.asarray(tw[c]), ref[c] * scale, rtol=1e-9, atol=1e-12)
    assert float(tw.qx) == pytest.approx(ref["q1"], abs=1e-9)
    assert float(tw.dqx) == pytest.approx(ref["dq1"] * ref["beta0"], rel=1e-9)


def test_twiss_written_and_read_back(madx_twiss_file, tmp_path):
    path, _ = madx_twiss_file
    tw = read_tfs_twiss(path)
    rp = jacc.ReferenceParticle.from_energy("electron", 1e9)
    for reference in (rp, None):
        out = tmp_path / "back.tfs"
        write_tfs(twiss_to_tfs(tw, reference=reference), out)
        back = read_tfs_twiss(out)
        assert back.name == tw.name
        for c in COLS:
            # the file's own beta0 (PC/ENERGY) converts back; MAD-X wrote 10 digits
            np.testing.assert_allclose(np.asarray(back[c]), np.asarray(tw[c]), rtol=1e-12, atol=1e-15)


def test_tfs_pandas_reads_what_we_write(tmp_path):
    tfs = pytest.importorskip("tfs")
    lat, _ = jacc.lattices.fodo_ring()
    sv = lat.survey()
    path = tmp_path / "survey.tfs"
    write_tfs(survey_to_tfs(sv), path)
    df = tfs.read(path)
    assert list(df.columns) == ["NAME", "S", "X", "Y", "Z", "THETA", "PHI", "PSI"]
    assert df.headers["TYPE"] == "SURVEY"
    np.testing.assert_array_equal(df["Z"].to_numpy(), sv.z)
    ours = read_tfs(path)
    np.testing.assert_array_equal(ours["theta"], sv.theta)
    assert list(ours["name"]) == list(sv.name)


def test_generic_table_round_trip(tmp_path):
    tab = TfsTable({"TITLE": "a table", "N": 3, "Q": 0.25},
                   {"NAME": np.array(["a", "b c", "d"], dtype=object),
                    "K": np.array([1, 2, 3]), "V": np.array([0.1, -2e-17, 3e300])})
    write_tfs(tab, tmp_path / "t.tfs")
    back = read_tfs(tmp_path / "t.tfs")
    assert back.headers == tab.headers
    assert list(back["NAME"]) == ["a", "b c", "d"]
    np.testing.assert_array_equal(back["K"], tab.columns["K"])
    np.testing.assert_array_equal(back["V"], tab.columns["V"])


@pytest.mark.parametrize("text, problem", [
    ("@ TITLE %s\n* NAME\n$ %s\n \"a\"\n", "line 1: a header"),
    ("* NAME S\n$ %s %le\n \"a\" 1.0 2.0\n", "line 3: 3 values for 2 columns"),
    ("* NAME S\n$ %s %le\n \"a\" x\n", "line 3: 'x' is not a valid %le"),
    ("\"a\" 1.0\n", "line 1: a data row before"),
    ("@ A %le 1\n", "no column line"),
])
def test_malformed_tfs(tmp_path, text, problem):
    path = tmp_path / "bad.tfs"
    path.write_text(text)
    with pytest.raises(LatticeError, match=problem) as err:
        read_tfs(path)
    assert str(path) in str(err.value)


def test_madx_reads_what_we_write(madx_twiss_file, tmp_path):
    path, _ = madx_twiss_file
    tw = read_tfs_twiss(path)
    out = tmp_path / "ours.tfs"
    write_tfs(twiss_to_tfs(tw, reference=jacc.ReferenceParticle.from_energy("electron", 1e9)), out)
    m = cpymad.Madx(stdout=False)
    m.input(f'readtable, file="{out}", table=ours;')
    t = m.table.ours
    betx = np.array(t.betx).copy()
    names = [str(n) for n in t.name]
    m.quit()
    np.testing.assert_array_equal(betx, np.asarray(tw.betx))
    assert names[:2] == list(tw.name[:2])
