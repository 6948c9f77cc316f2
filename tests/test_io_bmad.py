"""Bmad import and export: the FODO test ring against MAD-X, lossless write/read, malformed files."""

import os

import pytest

import jacc
from jacc.lattice import LatticeError, PhysicsWarning
from interop_ref import (DATA, compare_twiss, every_type_lattice, madx_fodo, madx_import, quiet,
                         same_as_madx_import)

pytest.importorskip("cpymad.madx")
BMAD = os.path.join(DATA, "fodo.bmad")


@pytest.fixture(scope="module")
def imported():
    return quiet(jacc.Lattice.from_bmad, BMAD)


def test_same_lattice_as_madx(imported):
    """Nested lines, a reflected half cell, 8 repeats, variables, sbend g/angle, fint/fintx/hgap."""
    ref, _ = madx_import()
    assert imported.line == ref.line
    for name, el in ref.definitions.items():
        a, b = el.model_dump(), imported.definitions[name].model_dump()
        a.pop("extra"), b.pop("extra")
        if name == "b2":  # given by g = ang/1.5: angle = g * l, within rounding
            assert b.pop("angle") == pytest.approx(a.pop("angle"), rel=1e-15)
        assert a == b, name
    assert imported.extra["bmad"]["parameter"]["particle"] == "electron"


def test_twiss_against_madx(imported):
    _, rp = madx_import()
    compare_twiss(jacc.twiss(imported, rp), madx_fodo())


@pytest.mark.parametrize("which", ["fodo", "every"])
def test_write_and_read_back(imported, tmp_path, which):
    lat = imported if which == "fodo" else every_type_lattice()
    path = tmp_path / "back.bmad"
    path.write_text(lat.to_bmad())
    back = quiet(jacc.Lattice.from_bmad, path)
    for i in range(len(lat)):
        a, b = lat.element_at(i).model_dump(), back.element_at(i).model_dump()
        a.pop("name"), b.pop("name")
        assert a == b
    assert {k: v.value for k, v in back.knobs.items()} == {k: v.value for k, v in lat.knobs.items()}
    if which == "fodo":
        assert back == lat


def test_conventions(tmp_path):
    path = tmp_path / "c.bmad"
    path.write_text("""
b: sbend, l = 2, rho = 10, ref_tilt = 0.1, tilt = 0.01, hgap = 0.02, hgapx = 0.01, fint = 0.5
m: multipole, k1l = 0.1, ks2l = 0.2, t1 = 0.3, t2 = 0.3
k: kicker, hkick = 1e-3, vkick = -2e-3
r: rbend, l = 1, angle = 0.1
b[k1] = 0.02
l1: line = (b, m, k, r)
l2: line = (2*(l1, -l1))
use, l2
""")
    lat = jacc.Lattice.from_bmad(path)
    b = lat["b"]
    assert (b.angle, b.tilt, b.dtilt, b.gap, b.k1) == (0.2, 0.1, 0.01, 0.04, 0.02)
    assert b.fintx == 0.25                       # fintx * hgapx kept with JACC's single gap
    assert lat["m"].knl == [0.0, 0.1] and lat["m"].ksl == [0.0, 0.0, 0.2] and lat["m"].tilt == 0.3
    assert (lat["k"].xangle, lat["k"].yangle) == (1e-3, -2e-3)
    assert lat.line == ["b", "m", "k", "r", "r", "k", "m", "b"] * 2


@pytest.mark.parametrize("text, problem", [
    ("d: drift, l = 1\nw: wiggler, l = 1\nl: line = (d, w)\nuse, l\n",
     r"line 2: element 'w': unsupported element type 'wiggler'"),
    ("q: quadrupole, l = 1, k1 = kq*2\nl: line = (q)\nuse, l\n", r"line 1: .*unknown knob 'kq'"),
    ("d: drift, l = 1\nl: line = (d, x)\nuse, l\n", r"line 2: line item 'x' is neither"),
    ("d: drift, l = 1\nl: line = (d)\n", r"no 'use, <line>'"),
    ("d: drift, l = 1 +\nl: line = (d)\nuse, l\n", r"line 1: cannot parse expression"),
    ("x[k1] = 2\n", r"line 1: 'x\[k1\]' sets an element not defined before"),
    ("d: drift, l = -1\nl: line = (d)\nuse, l\n", r"line 1: Drift 'd': field 'l'"),
    ("m: multipole, k1 = 2\nl: line = (m)\nuse, l\n", r"line 1: element 'm': a multipole takes integrated"),
])
def test_malformed(tmp_path, text, problem):
    path = tmp_path / "bad.bmad"
    path.write_text(text)
    with pytest.raises(LatticeError, match=problem) as err:
        jacc.Lattice.from_bmad(path)
    assert str(path) in str(err.value)


def test_unmodelled_attribute_warns(tmp_path):
    path = tmp_path / "w.bmad"
    path.write_text("q: quadrupole, l = 1, k1 = 1, num_steps = 10\nl: line = (q)\nuse, l\n")
    with pytest.warns(PhysicsWarning, match="num_steps"):
        jacc.Lattice.from_bmad(path)


def test_export_refuses_what_bmad_cannot_hold():
    lat, _ = jacc.lattices.iota()
    with pytest.raises(LatticeError, match="DipoleEdge"):
        lat.to_bmad()
