"""Survey against MAD-X SURVEY (cpymad, computed here): IOTA, the FODO ring, a line of tilted bends.

Tolerance 1e-9 m and 1e-9 rad (the issue's): both sides compose the same rotations in float64,
so the differences are rounding (measured below 1e-13).
"""

import numpy as np
import pytest

import jacc
from jacc.lattices import data_path

cpymad = pytest.importorskip("cpymad.madx")

TOL = 1e-9
COLS = ("s", "x", "y", "z", "theta", "phi", "psi")

TILTED = """
beam;
b1: sbend, l=1.0, angle=0.3, tilt=0.4;
b2: rbend, l=1.2, angle=-0.2, tilt=pi/2;
b3: sbend, l=0.8, angle=0.5, tilt=-1.1, e1=0.1;
b4: sbend, l=2.0, angle=2.5;
q: quadrupole, l=0.5, k1=0.1, tilt=0.3;
d: drift, l=0.7;
tline: line=(d, b1, d, q, b2, d, b3, d, b1, b3, b4, b4, b4, d, b2);
use, sequence=tline;
"""


def madx_survey(path=None, text=None, sequence=None):
    m = cpymad.Madx(stdout=False)
    if path is not None:
        m.call(str(path))
    else:
        m.input(text)
    if sequence:
        m.use(sequence=sequence)
    t = m.survey()
    out = {c: np.array(t[c]).copy() for c in COLS}
    m.quit()
    return out


def compare(sv, ref):
    # MAD-X's rows: its start marker, every element, its end marker; ours: start, placements
    assert len(ref["s"]) == len(sv) + 1
    worst = {}
    for c in COLS:
        err = np.abs(np.asarray(sv[c]) - ref[c][:-1]).max()
        assert err < TOL, (c, err)
        worst[c] = err
    return worst


def compare_at_s(sv, ref):
    """Nested sequences add MAD-X markers: compare the last row at each distinct s."""
    def last(s):
        s = np.asarray(s)
        return np.nonzero(np.append(np.diff(s) > 1e-9, True))[0]

    ours, mad = last(sv.s), last(ref["s"])
    assert len(ours) == len(mad) > len(sv) // 2
    for c in COLS:
        err = np.abs(np.asarray(sv[c])[ours] - ref[c][mad]).max()
        assert err < TOL, (c, err)


def test_survey_iota():
    lat, _ = jacc.lattices.iota()
    ref = madx_survey(data_path("t1_iota_8_4_with_correctors.madx"), sequence="iota")
    compare(lat.survey(), ref)
    assert abs(lat.survey().theta[-1] + 2 * np.pi) < TOL  # a closed ring turns by -2 pi, as MAD-X


def test_survey_fodo_ring():
    lat, _ = jacc.lattices.fodo_ring()
    compare_at_s(lat.survey(), madx_survey(data_path("fodo40.madx"), sequence="ring"))


def test_survey_tilted_bends(tmp_path):
    path = tmp_path / "tilted.madx"
    path.write_text(TILTED)
    lat = jacc.Lattice.from_madx(path)
    sv = lat.survey()
    worst = compare(sv, madx_survey(text=TILTED))
    assert np.abs(sv.y).max() > 0.1 and np.abs(sv.psi).max() > 0.1  # leaves the plane
    assert max(worst.values()) < TOL


MULTIPOLES = """
beam, particle=proton, energy=2;
m1: multipole, knl={0.01};
m2: multipole, knl={0.01, 0.1}, angle=0.02;
m3: multipole, knl={0.03}, tilt=0.3;
m4: multipole, ksl={0.02};
d: drift, l=2.0;
mline: line=(d, m1, d, m2, d, m3, d, m4, d);
use, sequence=mline;
"""


def test_survey_thin_multipoles(tmp_path):
    """A thin multipole turns the reference by its ANGLE, else by K0L, rolled by its tilt;
    a skew K0SL does not turn it (MAD-X SURVEY)."""
    path = tmp_path / "multipoles.madx"
    path.write_text(MULTIPOLES)
    lat = jacc.Lattice.from_madx(path)
    sv = lat.survey()
    compare(sv, madx_survey(text=MULTIPOLES))
    assert abs(sv.theta[-1]) > 0.05 and abs(sv.phi[-1]) > 1e-3


def test_survey_table_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    lat, _ = jacc.lattices.fodo_ring()
    sv = lat.survey(x0=1.0, theta0=0.1)
    assert sv.name[0] == "start" and sv.x[0] == 1.0 and sv.theta[0] == 0.1
    df = sv.to_pandas()
    assert list(df.columns) == ["name", *COLS] and len(df) == len(lat) + 1
    ax = sv.plot()
    ax.figure.savefig(tmp_path / "footprint.png")
    with pytest.raises(KeyError, match="no column"):
        sv["betx"]
