"""Bend, edge and dipedge maps against xtrack 0.118 (one pass, jit + vmap).

Model settings on both sides:

* ``SBend(edge=LinearEdge())`` + ``Yoshida6()`` (the kick count resolved from ``l``,
  ``angle``) against ``xt.Bend`` with every model left at its default (model and
  integrator ``'adaptive'`` = rot-kick-rot and yoshida-6, ``num_multipole_kicks=0``,
  edge models ``'linear'``);
* ``SBend(edge=FullEdge())`` against the same with ``edge_entry_model =
  edge_exit_model = 'full'``;
* ``ExactSBend`` against ``model='bend-kick-bend'``;
* ``DipoleEdge(edge=LinearEdge() | FullEdge(multipole=False), side)`` against
  ``xt.DipoleEdge(model='linear' | 'full', side)``;
* an RBend through ``rbend_to_sbend`` against ``xt.RBend(length_straight=l)`` (its
  default curved body).

Particles: 150 MeV electrons and 2.5 MeV protons (beta0 = 0.0729), mm/mrad amplitudes,
|pt| <= 1e-3.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xtrack as xt

from jacc.physics.base import DriftKick
from jacc.physics.bend import (
    XSUITE_DEFAULTS,
    XSUITE_FULL_EDGE,
    ExactSBend,
    SBend,
    Yoshida6,
    rbend_to_sbend,
)
from jacc.physics.dipedge import XSUITE_DEFAULTS as DIPEDGE_DEFAULTS
from jacc.physics.dipedge import XSUITE_FULL_EDGE as DIPEDGE_FULL
from jacc.physics.dipedge import DipoleEdge
from jacc.physics.edge import FullEdge, LinearEdge, NoEdge
from xsuite_ref import xsuite_reference, xsuite_track

pytestmark = pytest.mark.xsuite

# Both codes evaluate the same steps in float64; what is left is rounding (measured <4e-15).
TOL_XSUITE = 1e-12

SPECIES = ("electron", "proton")


reference = xsuite_reference


def particles(n=40, seed=11):
    """MAD-X coordinates with realistic amplitudes (one particle on the reference orbit)."""
    rng = np.random.default_rng(seed)
    scale = np.array([3e-3, 2e-3, 3e-3, 2e-3, 1e-2, 1e-3])
    x = rng.uniform(-1.0, 1.0, (n, 6)) * scale
    x[0] = 0.0
    return x


def bend_params(**kw):
    p = dict(l=0.4, angle=0.0, k1=0.0, k2=0.0, e1=0.0, e2=0.0, fint=0.0, fintx=0.0, gap=0.0)
    p.update(kw)
    return p


# IOTA v8.4 (t1_iota_8_4.madx): m1r/m2r are plain sector bends between thin dedge30/dedge60
# (e1 = 0, hgap = 0.029, fint = 0.5); the others cover edges in the bend itself.
BENDS = {
    "iota_m1r": bend_params(l=0.4305191429, angle=0.5235987756),
    "iota_m2r": bend_params(l=0.8092963858, angle=1.047197551),
    "pi8_edges": bend_params(
        l=0.4, angle=np.pi / 8, e1=np.pi / 16, e2=np.pi / 16, fint=0.5, fintx=0.5, gap=0.058
    ),
    "ipi_dogleg": bend_params(
        l=0.25, angle=-np.pi / 6, e1=-np.pi / 12, e2=-np.pi / 12, fint=0.5, fintx=0.5, gap=0.03
    ),
    "combined": bend_params(
        l=0.4, angle=np.pi / 8, k1=-1.2, k2=2.5, e1=0.1, e2=-0.05, fint=0.4, fintx=0.6, gap=0.04
    ),
    "straight_k1": bend_params(l=0.4, angle=0.0, k1=1.3, k2=0.5),
}

EDGES = {
    "dedge30": dict(h=1.216203238, e1=0.0, gap=0.058, fint=0.5),
    "tilted": dict(h=-2.0, e1=0.2, gap=0.03, fint=0.4),
}


def xt_bend(p, edge="linear", model=None):
    """The xtrack element equivalent to bend parameters ``p`` (MAD-X importer's mapping)."""
    b = xt.Bend(
        length=p["l"], angle=p["angle"], k1=p["k1"], k2=p["k2"],
        edge_entry_angle=p["e1"], edge_exit_angle=p["e2"],
        edge_entry_fint=p["fint"], edge_exit_fint=p["fintx"],
        edge_entry_hgap=p["gap"] / 2, edge_exit_hgap=p["gap"] / 2,
    )
    b.edge_entry_model = edge
    b.edge_exit_model = edge
    if model is not None:
        b.model = model
    return b


def track_xtrack(element, species):
    ref = reference(species)
    line = xt.Line(elements=[element], element_names=["e"])
    out, state = xsuite_track(line, particles(), mass0=ref.mass0, q0=ref.charge, p0c=ref.p0c)
    assert np.all(state == 1), "xtrack lost particles"
    return out


def track_jacc(phys, method, params, species):
    ref = reference(species)
    p = {k: jnp.asarray(v, dtype=float) for k, v in params.items()}
    f = jax.jit(jax.vmap(lambda z: method(phys, p, z, ref)))
    return np.asarray(f(jnp.asarray(particles())))


@dataclasses.dataclass(frozen=True)
class Model:
    """One model setting: JACC physics factory and the xtrack edge / core names."""

    phys: object
    xt_edge: str
    xt_model: str | None


MODELS = {
    "default": Model(XSUITE_DEFAULTS["SBend"][0], "linear", None),
    "full_edge": Model(XSUITE_FULL_EDGE["SBend"][0], "full", None),
    "bend_kick_bend": Model(ExactSBend(edge=LinearEdge()), "linear", "bend-kick-bend"),
}


@pytest.mark.parametrize("species", SPECIES)
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("case", list(BENDS))
def test_sbend_matches_xtrack(case, model, species):
    p, m = BENDS[case], MODELS[model]
    expected = track_xtrack(xt_bend(p, m.xt_edge, m.xt_model), species)
    method = XSUITE_DEFAULTS["SBend"][1].resolve(p)
    got = track_jacc(m.phys, method, p, species)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL_XSUITE)


@pytest.mark.parametrize("species", SPECIES)
def test_kick_count_matters(species):
    """The comparison above resolves xtrack's slice count: one slice more is visible."""
    p = BENDS["iota_m1r"]
    expected = track_xtrack(xt_bend(p), species)
    method = Yoshida6().resolve(p)
    other = Yoshida6(kicks=7 * (method.slices + 1))
    got = track_jacc(SBend(), other, p, species)
    assert np.abs(got - expected).max() > 10 * TOL_XSUITE


def test_default_scheme_differs_from_exact_flow():
    """xtrack's default nested split is ~1e-10 from the exact dipole flow (why SBend
    reproduces it step by step); both agree far better than any physics tolerance."""
    p = BENDS["iota_m2r"]
    default = track_jacc(SBend(), Yoshida6().resolve(p), p, "electron")
    exact = track_jacc(ExactSBend(), DriftKick(), p, "electron")
    dev = np.abs(default - exact).max()
    assert 10 * TOL_XSUITE < dev < 1e-8


@pytest.mark.parametrize("species", SPECIES)
@pytest.mark.parametrize("edge", ["linear", "full"])
def test_rbend_matches_xtrack(edge, species):
    """A MAD-X-style rbend (chord length, extra face angles) as its equivalent sector bend."""
    pr = bend_params(
        l=0.4, angle=np.pi / 8, k1=0.7, k2=-1.0, e1=0.05, e2=0.02, fint=0.5, fintx=0.3, gap=0.04
    )
    rb = xt.RBend(
        length_straight=pr["l"], angle=pr["angle"], k1=pr["k1"], k2=pr["k2"],
        edge_entry_angle=pr["e1"], edge_exit_angle=pr["e2"],
        edge_entry_fint=pr["fint"], edge_exit_fint=pr["fintx"],
        edge_entry_hgap=pr["gap"] / 2, edge_exit_hgap=pr["gap"] / 2,
    )
    rb.edge_entry_model = edge
    rb.edge_exit_model = edge
    l_arc, e1, e2 = rbend_to_sbend(pr["l"], pr["angle"], pr["e1"], pr["e2"])
    ps = dict(pr, l=float(l_arc), e1=float(e1), e2=float(e2))
    assert ps["l"] == pytest.approx(rb.length, rel=1e-15, abs=0)
    table = XSUITE_DEFAULTS if edge == "linear" else XSUITE_FULL_EDGE
    phys, method = table["RBend"]
    got = track_jacc(phys, method.resolve(ps), ps, species)
    np.testing.assert_allclose(got, track_xtrack(rb, species), rtol=0, atol=TOL_XSUITE)


@pytest.mark.parametrize("species", SPECIES)
@pytest.mark.parametrize("side", ["entry", "exit"])
@pytest.mark.parametrize("model", ["linear", "full"])
@pytest.mark.parametrize("case", list(EDGES))
def test_dipedge_matches_xtrack(case, model, side, species):
    pe = EDGES[case]
    table = DIPEDGE_DEFAULTS if model == "linear" else DIPEDGE_FULL
    phys, method = table["DipoleEdge"]
    got = track_jacc(phys.with_side(side), method, pe, species)
    de = xt.DipoleEdge(
        k=pe["h"], e1=pe["e1"], hgap=pe["gap"] / 2, fint=pe["fint"], model=model, side=side
    )
    np.testing.assert_allclose(got, track_xtrack(de, species), rtol=0, atol=TOL_XSUITE)


def test_full_dipedge_sides_differ():
    """The side matters in the full model (the fringe changes sign), not in the linear one."""
    pe = EDGES["tilted"]
    full = [track_jacc(DipoleEdge(edge=FullEdge(multipole=False), side=s), DriftKick(), pe,
                       "electron") for s in ("entry", "exit")]
    lin = [track_jacc(DipoleEdge(side=s), DriftKick(), pe, "electron") for s in ("entry", "exit")]
    assert np.abs(full[0] - full[1]).max() > 1e-9
    assert np.abs(lin[0] - lin[1]).max() == 0.0


@pytest.mark.parametrize("species", SPECIES)
@pytest.mark.parametrize("edge", ["linear", "full"])
def test_iota_dipole_with_dipedges(edge, species):
    """IOTA's M2R: thin dedge60 at both ends of a plain sector bend, as one line."""
    pe = dict(h=1.293960494, e1=0.0, gap=0.058, fint=0.5)
    p = BENDS["iota_m2r"]
    ref = reference(species)
    xt_edge = "full" if edge == "full" else "linear"
    elements = [
        xt.DipoleEdge(k=pe["h"], e1=0.0, hgap=0.029, fint=0.5, model=xt_edge, side="entry"),
        xt_bend(p, xt_edge),
        xt.DipoleEdge(k=pe["h"], e1=0.0, hgap=0.029, fint=0.5, model=xt_edge, side="exit"),
    ]
    line = xt.Line(elements=elements, element_names=["d1", "b", "d2"])
    expected, _ = xsuite_track(line, particles(), mass0=ref.mass0, q0=ref.charge, p0c=ref.p0c)

    btab, dtab = (XSUITE_DEFAULTS, DIPEDGE_DEFAULTS) if edge == "linear" else (
        XSUITE_FULL_EDGE, DIPEDGE_FULL)
    bphys, bmeth = btab["SBend"]
    dphys, dmeth = dtab["DipoleEdge"]
    bmeth = bmeth.resolve(p)
    pb = {k: jnp.asarray(v) for k, v in p.items()}
    pd = {k: jnp.asarray(v) for k, v in pe.items()}

    def chain(z):
        z = dmeth(dphys.with_side("entry"), pd, z, ref)
        z = bmeth(bphys, pb, z, ref)
        return dmeth(dphys.with_side("exit"), pd, z, ref)

    got = np.asarray(jax.jit(jax.vmap(chain))(jnp.asarray(particles())))
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL_XSUITE)


@pytest.mark.parametrize("edge", ["linear", "full"])
def test_dipedges_equal_bend_edges(edge):
    """A bend with e1/e2/fint/gap equals the edge-less bend between DipoleEdges (entry, exit).

    Two xtrack behaviours this exposes: its MAD-X importer leaves every ``dipedge`` on side
    'entry', which changes the full model at exit faces; and with edge model 'full' a bend
    whose own e1 = fint = gap = 0 still applies a hard-edge fringe (its linear edge is then
    the identity), so an sbend between dipedges gets its fringe twice.
    """
    pe1 = dict(h=np.pi / 8 / 0.4, e1=0.1, gap=0.04, fint=0.4)
    pe2 = dict(h=np.pi / 8 / 0.4, e1=-0.05, gap=0.04, fint=0.6)
    with_edges = bend_params(l=0.4, angle=np.pi / 8, e1=0.1, e2=-0.05, fint=0.4, fintx=0.6,
                             gap=0.04)
    plain = bend_params(l=0.4, angle=np.pi / 8)
    btab, dtab = (XSUITE_DEFAULTS, DIPEDGE_DEFAULTS) if edge == "linear" else (
        XSUITE_FULL_EDGE, DIPEDGE_FULL)
    bphys, bmeth = btab["SBend"]
    dphys, dmeth = dtab["DipoleEdge"]
    bmeth = bmeth.resolve(plain)
    ref = reference("electron")
    jp = lambda p: {k: jnp.asarray(v) for k, v in p.items()}  # noqa: E731

    def chain(z, bend):
        z = dmeth(dphys.with_side("entry"), jp(pe1), z, ref)
        z = bmeth(bend, jp(plain), z, ref)
        return dmeth(dphys.with_side("exit"), jp(pe2), z, ref)

    x0 = jnp.asarray(particles())
    expected = track_jacc(bphys, bmeth, with_edges, "electron")
    got = np.asarray(jax.vmap(lambda z: chain(z, SBend(edge=NoEdge())))(x0))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)  # same operations
    doubled = np.asarray(jax.vmap(lambda z: chain(z, bphys))(x0))
    if edge == "linear":  # a linear edge with e = fint = gap = 0 is the identity
        np.testing.assert_allclose(doubled, expected, rtol=0, atol=1e-15)
    else:
        assert np.abs(doubled - expected).max() > 1e-7


@pytest.mark.parametrize("species", SPECIES)
@pytest.mark.parametrize("case", ["iota_m2r", "combined"])
def test_simplified_presets_still_match_xtrack(case, species):
    """``simplify`` (the engine's compile-time hook, all fields constant) keeps the map.

    The contract asks for agreement to rounding; an exact dipole flow in place of Xsuite's
    nested split would be ~1e-10 off here (see test_default_scheme_differs_from_exact_flow).
    """
    p = BENDS[case]
    phys, method = XSUITE_DEFAULTS["SBend"]
    method = method.resolve(p)
    sphys, smethod = phys.simplify(method, {k: float(v) for k, v in p.items()})
    got = track_jacc(sphys, smethod, p, species)
    np.testing.assert_allclose(got, track_xtrack(xt_bend(p), species), rtol=0, atol=TOL_XSUITE)
