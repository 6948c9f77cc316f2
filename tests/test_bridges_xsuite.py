"""Synthesis into Xsuite: `XsuiteExporter` lines against JACC's own optics and tracking.

Each lattice is exported with a config and compared with `jacc.twiss` / `jacc.track` under
the preset the config names (`XsuiteExporterConfig.preset`): the same models on both sides,
so only rounding and xtrack's finite-difference optics differ. Each JACC optics program is
compiled once per lattice (module-scoped fixtures), and lines are shared.
"""

import numpy as np
import pytest

import jacc
from jacc.bridges import XsuiteExporter, XsuiteExporterConfig, placement_names

xt = pytest.importorskip("xtrack")

from xsuite_ref import xsuite_track  # noqa: E402

E = jacc
# Amplitudes [m, 1, m, 1, m, 1] of the tracked particles: mm and 0.2 mrad, pt up to 5e-4.
RING_SCALE = [2e-3, 2e-4, 2e-3, 2e-4, 1e-3, 5e-4]
# tunes and betas only: the first-order optics program compiles in half the time
NO_CHROM = jacc.TwissOptions(chrom=False)


def _particles(n, scale, seed=3):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 6)) * np.asarray(scale)


def _every_element_lattice():
    """A line of every exportable element type, misaligned, tilted, kicked, skew, with RF."""
    d = E.Drift(name="d1", l=0.15, dx=1e-3, tilt=0.1)  # offsets leave a drift unchanged
    sx = E.Sextupole(name="sx", l=0.1, k2=30.0, k2s=5.0, dx=1e-4)  # placed twice
    els = [
        d, E.Quadrupole(name="qa", l=0.1, k1=8.0, dx=1e-3, dy=-5e-4),
        d, E.Quadrupole(name="qb", l=0.1, k1=-7.5, k1s=0.4, tilt=0.05, dtilt=0.01),
        d, E.SBend(name="sb", l=0.3, angle=0.2, k1=0.3, e1=0.05, e2=0.08, fint=0.5, gap=0.04, tilt=0.02),
        d, E.SBend(name="sbm", l=0.3, angle=0.1, dx=5e-4, dy=3e-4, tilt=0.01),
        d, E.RBend(name="rb", l=0.25, angle=-0.15, e1=0.02, e2=-0.01, k2=3.0),
        d, E.DipoleEdge(name="de1", h=0.5, e1=0.1, gap=0.04, fint=0.4, dx=2e-4, tilt=0.03),
        E.SBend(name="cfb", l=0.3, angle=0.15),
        E.DipoleEdge(name="de2", h=0.5, e1=0.1, gap=0.04, fint=0.4, side="exit"),
        d, sx,
        d, E.Octupole(name="oc", l=0.1, k3=800.0, k3s=100.0, dy=-2e-4, tilt=0.1),
        d, E.Multipole(name="mp", knl=[1e-3, 0.01, 2.0, 30.0], ksl=[5e-4, 0.005, 1.0], dx=1e-4, tilt=0.02),
        d, E.HKicker(name="hk", xangle=2e-4), d, E.VKicker(name="vk", l=0.1, yangle=-1e-4, dx=1e-4),
        d, E.HVCorrector(name="ck", xangle=-1e-4, yangle=2e-4, tilt=0.3),
        d, E.Solenoid(name="so", l=0.2, ks=0.8, dx=1e-4, dy=2e-4, tilt=0.1),
        d, E.RFCavity(name="cav", voltage=2e4, frequency=325e6, lag=0.1),
        d, E.RFCavity(name="cavt", l=0.1, voltage=2e4, frequency=325e6, lag=0.3, dx=1e-4),
        d, E.NonlinearLens(name="nl", knll=2e-6, cnll=0.01, dx=1e-4, tilt=0.05),
        E.Marker(name="m1"), d, E.Monitor(name="bpm"), E.Monitor(name="bpmt", l=0.1), d,
        E.RectangularAperture(name="ra", a=0.02, b=0.01),
        E.EllipticalAperture(name="ea", a=0.02, b=0.015),
        E.Quadrupole(name="qap", l=0.1, k1=1.0, aperture=jacc.Aperture(shape="circle", a=0.02)),
        d, sx, d,
    ]
    return jacc.Lattice.from_elements(els, name="every")


EVERY_KINDS = {"Drift", "Marker", "Monitor", "Quadrupole", "SBend", "RBend", "DipoleEdge",
               "Sextupole", "Octupole", "Multipole", "HKicker", "VKicker", "HVCorrector",
               "Solenoid", "RFCavity", "NonlinearLens", "RectangularAperture", "EllipticalAperture"}


def _w_steps(rp) -> dict:
    """xtrack Twiss arguments for displacements of 1e-6 m sqrt(beta / 1 m) in its optics.

    xtrack propagates the optics by central differences of particles displaced by
    ``step_W_sigma`` sigmas of the normalised emittances ``nemitt_x/y`` (defaults 0.01 and
    1e-6 m): 4e-5 m for 2.5 MeV protons, whose truncation error (sextupoles, the nonlinear
    lens) shifts IOTA's tunes by 9e-9 and betas by 3e-6 relative after a nonlinear lens.
    A geometric emittance of 1e-6 m and 1e-4 sigma leave 6e-11 in the tunes and 9e-10
    relative in the betas (measured; rounding grows as the displacement shrinks).
    """
    bg = rp.beta0 * rp.gamma0
    return dict(nemitt_x=1e-6 * bg, nemitt_y=1e-6 * bg, step_W_sigma=1e-4)


def _ring(lat, rp):
    cfg = XsuiteExporterConfig()
    line = XsuiteExporter(config=cfg).write_lattice(lat, rp)
    tw = jacc.twiss(lat, rp, model=cfg.preset(), options=NO_CHROM)
    return lat, rp, line, tw, line.twiss4d(**_w_steps(rp))


@pytest.fixture(scope="module")
def iota_e():
    return _ring(*jacc.lattices.iota())


@pytest.fixture(scope="module")
def iota_p():
    return _ring(*jacc.lattices.iota(species="proton"))


@pytest.fixture(scope="module")
def fodo():
    return _ring(*jacc.lattices.fodo_ring())


@pytest.fixture(scope="module")
def every():
    lat = _every_element_lattice()
    rp = jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    return lat, rp


def _exit_rows(lat, line):
    """Row of xtrack's Twiss table (element entrances) at the exit of each placement."""
    names = list(line.element_names)
    rows = []
    for n in placement_names(lat):
        k = names.index(n)
        if k + 1 < len(names) and names[k + 1].endswith("_shift_out"):
            k += 1
        rows.append(k + 1)
    return np.asarray(rows)


@pytest.mark.parametrize("name", ["fodo", "iota_e", "iota_p"])
def test_ring_optics_agree_with_jacc(request, name):
    lat, rp, line, tw, ref = request.getfixturevalue(name)
    # the same maps on both sides: only xtrack's finite differences differ (see _w_steps;
    # measured 6e-11 in the tunes on IOTA)
    assert abs(float(tw.qx) - ref.qx) < 1e-9 and abs(float(tw.qy) - ref.qy) < 1e-9
    rows = _exit_rows(lat, line)
    np.testing.assert_allclose(np.asarray(tw.s)[1:], ref.s[rows], rtol=0, atol=1e-9)
    for col in ("betx", "bety"):  # measured 9e-10 relative (IOTA, protons)
        np.testing.assert_allclose(np.asarray(getattr(tw, col))[1:], ref[col][rows], rtol=1e-8, err_msg=col)


@pytest.mark.parametrize("name", ["fodo", "iota_e", "iota_p"])
def test_ring_one_pass_agrees_with_jacc(request, name):
    lat, rp, line, _, _ = request.getfixturevalue(name)
    x = _particles(20, RING_SCALE)
    res = jacc.track(lat, rp, x, n_turns=1, record=None)
    ref, state = xsuite_track(line, x, mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c)
    np.testing.assert_array_equal(np.asarray(res.alive), state > 0)
    assert (state > 0).all()
    # same models, double precision: rounding only (measured 1.3e-13 m on the FODO ring)
    np.testing.assert_allclose(np.asarray(res.x), ref, rtol=0, atol=1e-12)


def test_iota_full_edges_one_pass(iota_e):
    lat, rp, _, _, _ = iota_e
    cfg = XsuiteExporterConfig(edge_model="full")
    line = XsuiteExporter(config=cfg).write_lattice(lat, rp)
    assert isinstance(cfg.preset(), jacc.XsuiteFullEdge)
    x = _particles(20, RING_SCALE)
    res = jacc.track(lat, rp, x, n_turns=1, record=None, model=cfg.preset())
    ref, _ = xsuite_track(line, x, mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c)
    np.testing.assert_allclose(np.asarray(res.x), ref, rtol=0, atol=1e-12)


CONFIGS = [
    XsuiteExporterConfig(),
    XsuiteExporterConfig(edge_model="full", dipole_edge_side="element", bend_model="bend-kick-bend"),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["defaults", "full-edge-by-side-exact-bend"])
def test_every_element_type_one_pass(every, cfg):
    lat, rp = every
    assert set(lat.count_by_type()) == EVERY_KINDS
    line = XsuiteExporter(config=cfg).write_lattice(lat, rp)
    x = _particles(50, [2e-3, 2e-3, 2e-3, 2e-3, 1e-3, 1e-3])
    res = jacc.track(lat, rp, x, n_turns=1, record=None, model=cfg.preset())
    ref, state = xsuite_track(line, x, mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c)
    # the apertures cut the same particles in both codes
    np.testing.assert_array_equal(np.asarray(res.alive), state > 0)
    assert 0.8 < np.mean(state > 0) < 1.0
    alive = state > 0
    # rounding only: measured 5.5e-14 (defaults) and 3.3e-14
    np.testing.assert_allclose(np.asarray(res.x)[alive], ref[alive], rtol=0, atol=1e-12)


def test_every_element_type_line_optics(every):
    lat, rp = every
    cfg = XsuiteExporterConfig()
    line = XsuiteExporter(config=cfg).write_lattice(lat, rp)
    init = dict(betx=2.0, alfx=-0.5, bety=3.0, alfy=0.7)
    tw = jacc.twiss(lat, rp, init=jacc.TwissInit(**init), model=cfg.preset(), options=NO_CHROM)
    # 4D on both sides: JACC's 4D optics leave the RF kicks out, xtrack's '4d' method
    # freezes the longitudinal coordinates. With xtrack's default displacements the
    # nonlinear lens (cnll = 1 cm, orbit 4 mm) leaves 3e-6 relative in betx (_w_steps)
    ref = line.twiss(method="4d", **_w_steps(rp), **init)
    rows = _exit_rows(lat, line)
    for col in ("x", "px", "y", "py"):  # the orbit: kicks and misalignments, rounding
        np.testing.assert_allclose(np.asarray(getattr(tw, col))[1:], ref[col][rows], rtol=0,
                                   atol=1e-14, err_msg=col)
    for col in ("betx", "bety"):
        np.testing.assert_allclose(np.asarray(getattr(tw, col))[1:], ref[col][rows], rtol=1e-8, err_msg=col)
    for col in ("mux", "muy"):
        np.testing.assert_allclose(np.asarray(getattr(tw, col))[1:], ref[col][rows], rtol=0,
                                   atol=1e-9, err_msg=col)


def test_names_follow_xtrack_madx_import():
    cpymad = pytest.importorskip("cpymad.madx")
    madx = cpymad.Madx(stdout=False)
    madx.input("""
        beam, particle=electron, energy=1;
        qf: quadrupole, l=0.5, k1=0.5; qd: quadrupole, l=0.5, k1=-0.5;
        d: drift, l=1; m: marker;
        cell: line=(m, qf, d, qd, d);
        ring: line=(3*cell);
        use, period=ring;
    """)
    imported = xt.Line.from_madx_sequence(madx.sequence["ring"])
    lat = jacc.Lattice.from_elements([
        E.Marker(name="m"), E.Quadrupole(name="qf", l=0.5, k1=0.5), E.Drift(name="d", l=1.0),
        E.Quadrupole(name="qd", l=0.5, k1=-0.5), E.Drift(name="d", l=1.0)] * 3, name="ring")
    line = XsuiteExporter().write_lattice(lat, jacc.ReferenceParticle.from_energy("electron", 1e9))
    ours = [n for n in line.element_names]
    theirs = [n for n in imported.element_names if "$" not in n]
    assert ours == theirs == placement_names(lat)
    assert ours[:7] == ["m", "qf", "d", "qd", "d:0", "m:0", "qf:0"]


def test_reference_particle_and_apertures(every):
    lat, rp = every
    line = XsuiteExporter().write_lattice(lat, rp)
    assert line.particle_ref.mass0 == rp.mass0 and line.particle_ref.p0c[0] == rp.p0c
    assert line.particle_ref.q0 == rp.charge
    assert isinstance(line["qap_aper"], xt.LimitEllipse) and isinstance(line["ra"], xt.LimitRect)
    bare = XsuiteExporter(XsuiteExporterConfig(install_apertures=False)).write_lattice(lat, rp)
    assert "qap_aper" not in bare.element_names and isinstance(bare["ra"], xt.Marker)


def test_rigid_curved_misalignment_is_xtracks_own(every):
    """``curved_misalignment='xsuite'`` hands bend offsets to xtrack, which moves the curved
    magnet rigidly: the exit differs from JACC's by about dx (1 - cos angle) ~ 2.5e-6 m
    transversely, and its longitudinal offset dx sin(angle) shifts t (5e-4 m here)."""
    lat, rp = every
    cfg = XsuiteExporterConfig(curved_misalignment="xsuite")
    line = XsuiteExporter(config=cfg).write_lattice(lat, rp)
    assert "sbm_shift_in" not in line.element_names and line["sbm"].shift_x == 5e-4
    x = np.zeros((1, 6))
    res = jacc.track(lat, rp, x, n_turns=1, record=None)
    ref, _ = xsuite_track(line, x, mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c)
    assert 1e-8 < np.abs(np.asarray(res.x) - ref)[:, :4].max() < 1e-5


def test_elements_without_counterpart_raise():
    rp = jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    fm = E.FieldMap(name="fmap", l=0.2, z=[0.0, 0.1, 0.2], bz=[0.0, 0.1, 0.0])
    lat = jacc.Lattice.from_elements([E.Drift(name="d", l=1.0), fm])
    with pytest.raises(NotImplementedError, match="FieldMap 'fmap'.*Xsuite"):
        XsuiteExporter().write_lattice(lat, rp)
    thin = jacc.Lattice.from_elements([E.Solenoid(name="sol0", ks=0.3)])
    with pytest.raises(NotImplementedError, match="Solenoid 'sol0'.*Xsuite"):
        XsuiteExporter().write_lattice(thin, rp)


def test_config_is_validated():
    with pytest.raises(ValueError, match="edge_model"):
        XsuiteExporterConfig(edge_model="exact")
    with pytest.raises(ValueError, match="unknown"):
        XsuiteExporterConfig(unknown=1)
    assert type(XsuiteExporterConfig().preset()) is jacc.Xsuite
    assert type(XsuiteExporterConfig(bend_model="bend-kick-bend").preset()) is jacc.XsuiteExactBend
    cfg = XsuiteExporterConfig.model_validate_json(XsuiteExporterConfig(edge_model="full").model_dump_json())
    assert cfg.edge_model == "full"
