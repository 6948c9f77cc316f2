"""elegant import and export: the FODO test ring against MAD-X, lossless write/read, malformed files."""

import os

import numpy as np
import pytest

import jacc
from jacc.lattice import LatticeError, PhysicsWarning
from jacc.lattice.io_elegant import rpn_to_infix
from jacc.lattice.io_tfs import read_tfs_twiss, twiss_to_tfs, write_tfs
from interop_ref import (DATA, compare_twiss, every_type_lattice, madx_fodo, madx_import, quiet,
                         same_as_madx_import)

pytest.importorskip("cpymad.madx")
LTE = os.path.join(DATA, "fodo.lte")


@pytest.fixture(scope="module")
def imported():
    return quiet(jacc.Lattice.from_elegant, LTE)


@pytest.fixture(scope="module")
def twiss(imported):
    _, rp = madx_import()
    return jacc.twiss(imported, rp), rp


def test_same_lattice_as_madx(imported):
    """Nested lines, a reflected half cell, 8 repeats, RPN variables and CSBEND/SBEN edges."""
    ref, _ = madx_import()
    same_as_madx_import(imported, ref)
    assert imported["b1"].fint == 0.45 and imported["b1"].fintx == 0.3 and imported["b1"].gap == 0.04
    assert imported["b1"].extra == {"elegant": {"n_kicks": 16.0}}
    assert imported.expressions["b1"]["e1"] == "(ang / 3)"
    imported.set_knob("kqf", 0.41)
    assert imported["qf"].k1 == 0.41
    imported.set_knob("kqf", 0.4)


def test_twiss_against_madx(twiss):
    tw, _ = twiss
    compare_twiss(tw, madx_fodo())


def test_twiss_written_as_tfs(twiss, tmp_path):
    tw, rp = twiss
    path = tmp_path / "twiss.tfs"
    write_tfs(twiss_to_tfs(tw, reference=rp), path)
    back = read_tfs_twiss(path)
    np.testing.assert_allclose(np.asarray(back.dx), np.asarray(tw.dx), rtol=1e-14, atol=1e-15)
    assert float(back.qy) == float(tw.qy)
    tfs = pytest.importorskip("tfs")
    df = tfs.read(path)
    np.testing.assert_array_equal(df["BETX"].to_numpy(), np.asarray(tw.betx))


@pytest.mark.parametrize("which", ["fodo", "every"])
def test_write_and_read_back(imported, tmp_path, which):
    lat = imported if which == "fodo" else every_type_lattice()
    path = tmp_path / "back.lte"
    path.write_text(lat.to_elegant())
    back = quiet(jacc.Lattice.from_elegant, path)
    assert back.line == [n if not lat.overrides.get(i) else f"{n}_{lat[i].occurrence}"
                         for i, n in enumerate(lat.line)]
    for i in range(len(lat)):
        a, b = lat.element_at(i).model_dump(), back.element_at(i).model_dump()
        a.pop("name"), b.pop("name")
        assert a == b
    assert {k: v.value for k, v in back.knobs.items()} == {k: v.value for k, v in lat.knobs.items()}


def test_rpn():
    assert rpn_to_infix("kq 2 * 1 +") == "((kq * 2) + 1)"
    assert rpn_to_infix("pi 4 / sin chs") == "(-sin((pi / 4)))"


def test_line_selection(tmp_path):
    path = tmp_path / "two.lte"
    path.write_text("D: DRIF, L=1\nQ: QUAD, L=0.1, K1=2\nA: LINE=(D)\nB: LINE=(D, Q, 2*(D, Q))\n")
    assert len(jacc.Lattice.from_elegant(path)) == 6          # the last line defined
    assert len(jacc.Lattice.from_elegant(path, line="a")) == 1
    edge = tmp_path / "edge.lte"
    edge.write_text("B: CSBEND, L=1, ANGLE=0.1, E1=0.05, E2=0.05, HGAP=0.01, EDGE2_EFFECTS=0\nL: LINE=(B)\n")
    b = jacc.Lattice.from_elegant(edge)["b"]
    assert (b.e1, b.fint, b.e2, b.fintx) == (0.05, 0.5, 0.0, 0.0)   # elegant's default FINT


@pytest.mark.parametrize("text, problem", [
    ("D: DRIF, L=1\nW: WIGGLER, L=1\nL: LINE=(D, W)\n", r"line 2: element 'w': unsupported element type 'wiggler'"),
    ("D: DRIF, L=1\nQ: QUAD, L=1, K1=\"kq 2 *\"\nL: LINE=(D, Q)\n", r"line 2: .*unknown knob 'kq'"),
    ("D: DRIF, L=1\nL: LINE=(D, X)\n", r"line 2: line item 'x' is neither"),
    ("D: DRIF, L=1\nL: LINE=(D, (D)\n", r"line 2: unbalanced"),
    ("D: DRIF, L=abc\nL: LINE=(D)\n", r"line 1: 'abc' is not a number"),
    ("D: DRIF, L=1, &\n", r"line 1: the file ends inside a continued statement"),
    ("% 1 + sto x\n", r"line 1: RPN expression '1 \+'"),
    ("D: DRIF, L=-1\nL: LINE=(D)\n", r"line 1: Drift 'd': field 'l'"),
])
def test_malformed(tmp_path, text, problem):
    path = tmp_path / "bad.lte"
    path.write_text(text)
    with pytest.raises(LatticeError, match=problem) as err:
        jacc.Lattice.from_elegant(path)
    assert str(path) in str(err.value)


def test_unmodelled_attribute_warns(tmp_path):
    path = tmp_path / "w.lte"
    path.write_text("B: CSBEND, L=1, ANGLE=0.1, N_KICKS=8\nL: LINE=(B)\n")
    with pytest.warns(PhysicsWarning, match="n_kicks"):
        jacc.Lattice.from_elegant(path)


def test_export_refuses_what_elegant_cannot_hold():
    lat = jacc.Lattice.from_elements([jacc.lattice.Quadrupole(name="q", l=1, k1s=0.1)])
    with pytest.raises(LatticeError, match="'k1s'.*no elegant counterpart"):
        lat.to_elegant()
    lat, _ = jacc.lattices.iota()
    with pytest.raises(LatticeError, match="DipoleEdge"):
        lat.to_elegant()
