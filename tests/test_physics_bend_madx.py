"""Bend and edge first-order maps against MAD-X, and what xtrack's MAD-X importer builds.

Each element sits alone at the start of a sequence; MAD-X's ``re11..re66`` at its exit
(``twiss, betx=1, bety=1, rmatrix``) is compared with the JACC map under ``Linear()``
(``SBend(edge=LinearEdge())``: ``sector_bend_matrix`` between the linear edges, MAD-X's
first-order model) and with ``DipoleEdge.matrix``, using MAD-X's own beta0 and gamma0 for
150 MeV electrons and 2.5 MeV protons.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jacc.physics.base import DriftKick, Linear, Reference
from jacc.physics.bend import XSUITE_DEFAULTS, SBend, rbend_to_sbend, sector_bend_matrix
from jacc.physics.dipedge import XSUITE_DEFAULTS as DIPEDGE_DEFAULTS
from jacc.physics.dipedge import DipoleEdge
from jacc.physics.edge import linear_edge_matrix

cpymad = pytest.importorskip("cpymad.madx")

from madx_ref import BEAMS, madx, madx_first_order  # noqa: E402,F401 (madx: a fixture)

# MAD-X prints its matrices from float64 maps of the same formulas; 1e-10 leaves room for
# its rounding in long expressions (observed: < 3e-14, the largest entry being R56 ~ 80).
TOL_MADX = 1e-10




def madx_rmatrix(mad, definition: str, length: float):
    """MAD-X's R matrix at the exit of one element alone in a sequence."""
    return madx_first_order(mad, definition, length)[0]


def jparams(p):
    return {k: jnp.asarray(v, dtype=float) for k, v in p.items()}


def linear_map(phys, p, ref):
    """The element's full map under Linear(), as a matrix (edges included)."""
    return np.asarray(jax.jacfwd(lambda z: Linear()(phys, jparams(p), z, ref))(jnp.zeros(6)))


# (id, MAD-X sbend attributes, JACC parameters); MAD-X hgap = gap / 2.
SBENDS = [
    ("iota_m1r", "l=0.4305191429, angle=0.5235987756",
     dict(l=0.4305191429, angle=0.5235987756)),
    ("pi8_edges", "l=0.4, angle=pi/8, e1=pi/16, e2=pi/16, fint=0.5, fintx=0.5, hgap=0.029",
     dict(l=0.4, angle=np.pi / 8, e1=np.pi / 16, e2=np.pi / 16, fint=0.5, fintx=0.5, gap=0.058)),
    ("combined", "l=0.4, angle=pi/8, k1=-1.2, e1=0.1, e2=-0.05, fint=0.4, fintx=0.6, hgap=0.02",
     dict(l=0.4, angle=np.pi / 8, k1=-1.2, e1=0.1, e2=-0.05, fint=0.4, fintx=0.6, gap=0.04)),
    ("focusing_negative",
     "l=0.25, angle=-pi/6, k1=2.5, e1=-0.2, e2=0.1, fint=0.5, fintx=0.5, hgap=0.015",
     dict(l=0.25, angle=-np.pi / 6, k1=2.5, e1=-0.2, e2=0.1, fint=0.5, fintx=0.5, gap=0.03)),
    ("straight_quad", "l=0.4, angle=0, k1=1.3", dict(l=0.4, angle=0.0, k1=1.3)),
]


def full_params(p):
    out = dict(l=0.0, angle=0.0, k1=0.0, k2=0.0, e1=0.0, e2=0.0, fint=0.0, fintx=0.0, gap=0.0)
    out.update(p)
    return out


@pytest.mark.madx
@pytest.mark.parametrize("case", SBENDS, ids=[c[0] for c in SBENDS])
def test_sbend_rmatrix(madx, case):
    mad, ref = madx
    _, definition, p = case
    p = full_params(p)
    r = madx_rmatrix(mad, f"sbend, {definition}", p["l"])
    np.testing.assert_allclose(linear_map(SBend(), p, ref), r, rtol=0, atol=TOL_MADX)
    # The same map assembled from the public matrices.
    h = p["angle"] / p["l"]
    m = (linear_edge_matrix(h, p["e2"], p["gap"] / 2, p["fintx"])
         @ sector_bend_matrix(p["l"], p["angle"], p["k1"], ref.beta0, ref.gamma0)
         @ linear_edge_matrix(h, p["e1"], p["gap"] / 2, p["fint"]))
    np.testing.assert_allclose(np.asarray(m), r, rtol=0, atol=TOL_MADX)


@pytest.mark.madx
def test_rbend_equals_its_sector_bend(madx):
    """MAD-X rbend == MAD-X sbend from rbend_to_sbend == JACC's map of that sector bend."""
    mad, ref = madx
    l, angle, k1, e1, e2 = 0.4, np.pi / 8, 0.7, 0.05, 0.02
    l_arc, s1, s2 = (float(v) for v in rbend_to_sbend(l, angle, e1, e2))
    # MAD-X (option rbarc, its default) advances s by the arc length of an rbend.
    r_rbend = madx_rmatrix(
        mad, f"rbend, l={l!r}, angle={angle!r}, k1={k1!r}, e1={e1!r}, e2={e2!r}, "
        "fint=0.5, fintx=0.3, hgap=0.02", l_arc)
    r_sbend = madx_rmatrix(
        mad, f"sbend, l={l_arc!r}, angle={angle!r}, k1={k1!r}, e1={s1!r}, e2={s2!r}, "
        "fint=0.5, fintx=0.3, hgap=0.02", l_arc)
    np.testing.assert_allclose(r_sbend, r_rbend, rtol=0, atol=TOL_MADX)
    p = full_params(dict(l=l_arc, angle=angle, k1=k1, e1=s1, e2=s2, fint=0.5, fintx=0.3, gap=0.04))
    np.testing.assert_allclose(linear_map(SBend(), p, ref), r_rbend, rtol=0, atol=TOL_MADX)


DIPEDGES = [
    ("iota_dedge30", "h=1.216203238, e1=0, hgap=0.029, fint=0.5",
     dict(h=1.216203238, e1=0.0, gap=0.058, fint=0.5)),
    ("tilted", "h=-2.0, e1=0.2, hgap=0.015, fint=0.4", dict(h=-2.0, e1=0.2, gap=0.03, fint=0.4)),
]


@pytest.mark.madx
@pytest.mark.parametrize("side", ["entry", "exit"])
@pytest.mark.parametrize("case", DIPEDGES, ids=[c[0] for c in DIPEDGES])
def test_dipedge_rmatrix(madx, case, side):
    mad, ref = madx
    _, definition, p = case
    r = madx_rmatrix(mad, f"dipedge, {definition}", 0.0)  # the row at the thin edge itself
    phys = DipoleEdge(side=side)
    np.testing.assert_allclose(np.asarray(phys.edge_matrix(jparams(p), ref)), r, rtol=0,
                               atol=TOL_MADX)
    # The element's map under Linear() and its (linear) tracking map are that matrix.
    for method in (Linear(), DriftKick()):
        jac = jax.jacfwd(lambda z: method(phys, jparams(p), z, ref))(jnp.zeros(6))
        np.testing.assert_allclose(np.asarray(jac), r, rtol=0, atol=TOL_MADX)


# IOTA's M1R as in t1_iota_8_4.madx, followed by an sbend with its own edges and an rbend.
IMPORT_SEQUENCE = """
dedge30: dipedge, e1:= 0, h:= 1.216203238, hgap:= 0.029, fint:= 0.5;
m1r: sbend, l:= 0.4305191429, angle:= 0.5235987756;
b1: sbend, l=0.25, angle=pi/6, e1=pi/12, e2=pi/12, fint=0.5, hgap=0.015;
rb: rbend, l=0.3, angle=0.2, k1=0.4, e1=0.03, fint=0.3, hgap=0.02;
imp: sequence, l=1.2, refer=entry;
  dedge30, at=0;
  m1r, at=0;
  dedge30, at=0.4305191429;
  b1, at=0.5;
  rb, at=0.8;
endsequence;
"""


@pytest.mark.madx
@pytest.mark.xsuite
def test_xtrack_madx_import_of_bends():
    """What ``xt.Line.from_madx_sequence`` builds, and that JACC's defaults track it."""
    xt = pytest.importorskip("xtrack")
    from xsuite_ref import xsuite_track

    mad = cpymad.Madx(stdout=False)
    mad.input(BEAMS["electron"] + IMPORT_SEQUENCE + "use, sequence=imp;")
    beam = mad.sequence.imp.beam
    ref = Reference(beam.beta, beam.gamma, beam.pc * 1e9, beam.mass * 1e9, beam.charge)
    line = xt.Line.from_madx_sequence(mad.sequence.imp)
    mad.quit()

    edges = [e for e in line.elements if isinstance(e, xt.DipoleEdge)]
    assert len(edges) == 2
    for e in edges:  # the importer never sets the side: both faces are 'entry'
        assert (e.model, e.side, e.k, e.e1, e.hgap, e.fint) == (
            "linear", "entry", 1.216203238, 0.0, 0.029, 0.5)
    m1r, b1 = (line[n] for n in ("m1r", "b1"))
    for b in (m1r, b1):
        assert isinstance(b, xt.Bend)
        assert (b.model, b.integrator, b.num_multipole_kicks) == ("adaptive", "adaptive", 0)
        assert (b.edge_entry_model, b.edge_exit_model) == ("linear", "linear")
    assert (b1.edge_entry_angle, b1.edge_exit_angle) == pytest.approx((np.pi / 12, np.pi / 12))
    assert (b1.edge_entry_hgap, b1.edge_entry_fint, b1.edge_exit_fint) == (0.015, 0.5, 0.5)
    rb = line["rb"]
    assert isinstance(rb, xt.RBend) and rb.length_straight == 0.3 and rb.edge_entry_angle == 0.03

    x0 = np.random.default_rng(3).uniform(-1, 1, (24, 6)) * [3e-3, 2e-3, 3e-3, 2e-3, 1e-2, 1e-3]
    expected, _ = xsuite_track(line, x0, mass0=ref.mass0, q0=ref.charge, p0c=ref.p0c)

    bphys, bmeth = XSUITE_DEFAULTS["SBend"]
    dphys, dmeth = DIPEDGE_DEFAULTS["DipoleEdge"]
    pd = jparams(dict(h=1.216203238, e1=0.0, gap=0.058, fint=0.5))
    pm = full_params(dict(l=0.4305191429, angle=0.5235987756))
    pb = full_params(dict(l=0.25, angle=np.pi / 6, e1=np.pi / 12, e2=np.pi / 12, fint=0.5,
                          fintx=0.5, gap=0.03))
    la, r1, r2 = (float(v) for v in rbend_to_sbend(0.3, 0.2, 0.03, 0.0))
    pr = full_params(dict(l=la, angle=0.2, k1=0.4, e1=r1, e2=r2, fint=0.3, fintx=0.3, gap=0.04))
    from jacc.physics.drift import Drift, XSUITE_DEFAULTS as DRIFT_DEFAULTS

    dr_phys, dr_meth = DRIFT_DEFAULTS["Drift"]
    gap1 = 0.5 - 0.4305191429
    gap2 = 0.8 - 0.75

    def chain(z):
        z = dmeth(dphys, pd, z, ref)
        z = bmeth.resolve(pm)(bphys, jparams(pm), z, ref)
        z = dmeth(dphys, pd, z, ref)
        z = dr_meth(dr_phys, jparams(dict(l=gap1)), z, ref)
        z = bmeth.resolve(pb)(bphys, jparams(pb), z, ref)
        z = dr_meth(dr_phys, jparams(dict(l=gap2)), z, ref)
        z = bmeth.resolve(pr)(bphys, jparams(pr), z, ref)
        return dr_meth(dr_phys, jparams(dict(l=1.2 - 0.8 - la)), z, ref)

    assert isinstance(dr_phys, Drift)
    got = np.asarray(jax.jit(jax.vmap(chain))(jnp.asarray(x0)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)  # rounding only
