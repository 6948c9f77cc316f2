"""A thin MULTIPOLE's dipole terms from MAD-X: KNL[0] with and without ANGLE, EFCOMP dkn[0], dks[0].

One quadrupole ring with one thin multipole, computed here by MAD-X (cpymad), by xtrack (its
MAD-X loader, and JACC's Xsuite export of the imported lattice) and by JACC. MAD-X bends the
reference by ANGLE (KNL[0] without one), kicks the orbit by ANGLE - KNL[0], and never bends
it by a field error. The ring is linear on momentum (quadrupoles, a thin dipole and
quadrupole), so the closed orbits agree to rounding.
"""

import warnings

import numpy as np
import pytest

import jacc
from jacc.bridges import XsuiteExporter
from jacc.lattice import PhysicsWarning
from jacc.lattice.io_madx import beam_reference_particle, read_madx

cpymad = pytest.importorskip("cpymad.madx")
xt = pytest.importorskip("xtrack")
pytestmark = pytest.mark.madx

ORBIT_TOL = 1e-12  # [m, rad] same linear model on momentum: rounding (measured ~1e-18)
XTRACK_TOL = 1e-12  # [m] xtrack's closed-orbit Newton search stops at ~1e-14 here
DISP_TOL = 1e-10  # [m] dispersion from finite differences in xtrack (measured ~1e-12)

RING = """
beam, particle=proton, energy=2.0;
qf: quadrupole, l=0.4, k1=0.5;
qd: quadrupole, l=0.4, k1=-0.5;
{mp}
ring: sequence, l=20, refer=centre;
qf, at=1; mp, at=3; qd, at=6; qf, at=11; qd, at=16;
endsequence;
use, sequence=ring;
{errors}
"""
_ERR = 'select, flag=error, pattern="^mp$"; efcomp, {};'

# case -> (multipole, errors, JACC's angle for it, knl[0] it holds, the orbit moves)
CASES = {
    "knl0": ("mp: multipole, knl={1e-4, 0.02};", "", None, 1e-4, False),
    "knl0-alone": ("mp: multipole, knl={1e-4};", "", None, 1e-4, False),
    "angle": ("mp: multipole, knl={0, 0.02}, angle=1e-4;", "", 1e-4, 0.0, True),
    "knl0-and-angle": ("mp: multipole, knl={1e-4, 0.02}, angle=2e-4;", "", 2e-4, 1e-4, True),
    "dkn0": ("mp: multipole, knl={1e-4, 0.02};", _ERR.format("dkn={-3e-5}"), 1e-4, 7e-5, True),
    "dkn0-straight": ("mp: multipole, knl={0, 0.02};", _ERR.format("dkn={2e-5}"), 0.0, 2e-5, True),
    "dks0": ("mp: multipole, knl={1e-4, 0.02};", _ERR.format("dks={2e-5}"), None, 1e-4, True),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    """MAD-X's TWISS, xtrack's (MAD-X loader) and JACC's lattice for one multipole."""
    mp, errors, angle, knl0, moves = CASES[request.param]
    path = tmp_path_factory.mktemp("mp") / "ring.madx"
    path.write_text(RING.format(mp=mp, errors=errors))
    m = cpymad.Madx(stdout=False)
    m.call(str(path))
    t = m.twiss()
    beam = m.sequence.ring.beam
    madx = {c: np.array(t[c]) for c in ("x", "px", "y", "py", "dx")}
    madx["beta"] = float(beam.beta)
    line = xt.Line.from_madx_sequence(m.sequence.ring, enable_field_errors=True)
    line.particle_ref = xt.Particles(mass0=beam.mass * 1e9, q0=1, energy0=beam.energy * 1e9)
    m.quit()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysicsWarning)  # ANGLE and the errors are all modelled
        lat = read_madx(path)
    rp = beam_reference_particle(lat.extra["beam"])
    return dict(name=request.param, madx=madx, line=line, lat=lat, rp=rp, angle=angle,
                knl0=knl0, moves=moves)


def _at_entries(tw, names, columns=("x", "px", "y", "py")):
    """Values at the entry of each named element: xtrack's rows are entries, JACC's (as
    MAD-X's) exits, so there the row before."""
    rows = list(tw["name"] if isinstance(tw, jacc.optics.TwissTable) else tw.name)
    back = 1 if isinstance(tw, jacc.optics.TwissTable) else 0
    return np.array([[np.asarray(tw[c])[rows.index(n) - back] for c in columns] for n in names])


def test_imported_fields(case):
    mp = case["lat"].element_at(case["lat"].line.index("mp"))
    assert mp.angle == case["angle"]
    assert mp.knl[0] == pytest.approx(case["knl0"], abs=1e-18)


def test_closed_orbit_as_madx(case):
    tw = jacc.twiss(case["lat"], case["rp"])
    ref = case["madx"]
    n = len(tw)
    worst = max(float(np.abs(np.asarray(tw[c]) - ref[c][:n]).max()) for c in ("x", "px", "y", "py"))
    assert worst < ORBIT_TOL, worst
    moved = max(float(np.abs(ref[c]).max()) for c in ("x", "y"))
    assert (moved > 1e-4) if case["moves"] else (moved == 0.0), moved


def test_closed_orbit_as_xtrack_and_its_export(case):
    names = ["qf", "mp", "qd"]
    ours = _at_entries(jacc.twiss(case["lat"], case["rp"]), names)
    loader = _at_entries(case["line"].twiss(method="4d"), names)
    exported = XsuiteExporter().write_lattice(case["lat"], case["rp"])
    export = _at_entries(exported.twiss(method="4d"), names)
    assert np.abs(ours - loader).max() < XTRACK_TOL
    assert np.abs(export - loader).max() < XTRACK_TOL


def test_dispersion(case):
    """MAD-X's TWISS keeps the chromatic terms of KNL[0] when ANGLE differs: there the
    reference is xtrack's (bent by ANGLE, as MAD-X's SURVEY), elsewhere MAD-X's too."""
    tw = jacc.twiss(case["lat"], case["rp"])
    ours = np.asarray(tw["dx"])  # d x / d delta; MAD-X's DX is d x / d pt = (d x / d delta) / beta
    if case["name"] in ("angle", "knl0-and-angle"):
        names = ["qf", "mp", "qd"]
        theirs = _at_entries(case["line"].twiss(method="4d"), names, ("dx",))
        assert np.abs(_at_entries(tw, names, ("dx",)) - theirs).max() < DISP_TOL
        madx_at = case["madx"]["dx"][: len(ours)] * case["madx"]["beta"]
        assert np.abs(ours - madx_at).max() > 1e-5  # the documented difference is real
    else:
        madx_at = case["madx"]["dx"][: len(ours)] * case["madx"]["beta"]
        assert np.abs(ours - madx_at).max() < ORBIT_TOL
