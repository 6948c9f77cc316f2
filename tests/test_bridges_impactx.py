"""Synthesis into ImpactX: `ImpactXExporter` lines tracked by ImpactX against `jacc.track`.

ImpactX runs in this process (`jacc.bridges.track_impactx`: no files, no profiler output).
The proton line is ../shared/lattices/ipi_standin.madx (2.5 MeV), without space charge,
with 1e4 particles drawn from its entrance Twiss and emittances (header of the file); the
longitudinal plane, which the header leaves open, gets rms t = 2 mm (0.8 degrees of
325 MHz) and rms pt = 1e-4 (dp/p = 1.4e-3).
"""

import subprocess
import sys

import jax
import numpy as np
import pytest

import jacc
from jacc.bridges import (ImpactXExporter, ImpactXExporterConfig, ImpactXWatchpoint,
                          WatchpointConfig, track_impactx)

impactx = pytest.importorskip("impactx")

E = jacc
LINEAR = ImpactXExporterConfig(model="linear", default_monitor_type="custom")
EXACT = ImpactXExporterConfig(model="exact", default_monitor_type="custom")
PARAXIAL = ImpactXExporterConfig(model="paraxial", default_monitor_type="custom")


@pytest.fixture(scope="module")
def ipi(shared_lattices):
    lat = jacc.Lattice.from_madx(shared_lattices / "ipi_standin.madx")
    rp = jacc.lattices.reference_from_beam(lat)
    # header: betx = bety = 0.25 m, alfx = -0.8, alfy = 0.8, normalised rms emittances 0.25 mm mrad
    emit = 0.25e-6 / (rp.beta0 * rp.gamma0)
    env = jacc.Envelope.from_twiss(0.25, -0.8, emit, 0.25, 0.8, emit, 2e-3, 1e-4)
    x = np.asarray(jacc.PhaseSpace.gaussian(rp, 10_000, env, key=jax.random.PRNGKey(0)).coords)
    return lat, rp, x


def _both(lat, rp, x, cfg, model):
    """(JACC result with BPM centroids, ImpactX result, exported line)."""
    line = ImpactXExporter(config=cfg).write_lattice(lat, rp)
    ref = track_impactx(line, rp, x)
    res = jacc.track(lat, rp, x, n_turns=1, record="centroid", model=model)
    return res, ref, line


def _centroids(line):
    return np.stack([wp.centroids[0] for wp in line.watchpoints.values()])


@pytest.fixture(scope="module")
def ipi_linear(ipi):
    return _both(*ipi, LINEAR, ImpactXExporterConfig.linear_preset())


@pytest.fixture(scope="module")
def ipi_exact(ipi):
    return _both(*ipi, EXACT, jacc.Xsuite())


def test_ipi_linear_models_agree_per_particle(ipi, ipi_linear):
    res, ref, line = ipi_linear
    assert ref.alive.all() and np.asarray(res.alive).all()
    # the same linear maps in both codes (ImpactX's linear edge set to MAD-X's focusing,
    # the RF kick as its LinearMap): rounding only, measured 1e-15 m
    np.testing.assert_allclose(np.asarray(res.x), ref.x, rtol=0, atol=1e-9)
    assert np.abs(np.asarray(res.x) - ref.x).max() < 1e-12


def test_ipi_linear_watchpoints_equal_jacc_bpms(ipi_linear):
    res, _, line = ipi_linear
    assert list(line.watchpoints) == ["bpm1", "bpm2", "bpm3", "bpm4"]
    assert [n.split(":")[0] for n in res.monitors.names] == list(line.watchpoints)
    # measured 2e-18
    np.testing.assert_allclose(_centroids(line), np.asarray(res.monitors.centroid)[0], rtol=0, atol=1e-9)


# JACC's default models (Xsuite's: expanded drifts, chromatic thick-lens quadrupoles,
# Yoshida-split bends) are paraxial; ImpactX's exact elements keep the full kinematics
# sqrt((1 + delta)^2 - px^2 - py^2). The difference grows as the angles cubed: this beam
# reaches 18 mrad (4 sigma) after the first quadrupoles, and the particles differ by up to
# 3.8e-5 m (measured; 7.5e-6 m with exact drifts in JACC, the rest from the quadrupoles).
# ImpactX's integrator is converged there (orders 2 and 6 differ by 1e-7 m).
EXACT_TOL = 1e-4


def test_ipi_default_models_against_exact_elements(ipi_exact):
    res, ref, _ = ipi_exact
    assert ref.alive.all()
    diff = np.abs(np.asarray(res.x) - ref.x)
    assert diff.max() < EXACT_TOL
    assert diff.max() > 1e-6  # a genuine model difference, not rounding


def test_ipi_exact_watchpoints_equal_jacc_bpms(ipi_exact):
    res, _, line = ipi_exact
    # centroids average the kinematic differences out: measured 1.9e-7
    np.testing.assert_allclose(_centroids(line), np.asarray(res.monitors.centroid)[0], rtol=0, atol=EXACT_TOL)


def test_ipi_default_models_against_paraxial_elements(ipi):
    """ImpactX's paraxial tier is JACC's default physics: ChrDrift is the expanded drift,
    ChrQuad the chromatic thick lens; only the bends (exact in ImpactX, a Yoshida split of
    polar drifts in JACC) differ, measured 4.3e-9 m in t and 5e-11 m transversely."""
    res, ref, line = _both(*ipi, PARAXIAL, jacc.Xsuite())
    diff = np.abs(np.asarray(res.x) - ref.x)
    assert diff[:, :4].max() < 1e-9 and diff.max() < 1e-8
    np.testing.assert_allclose(_centroids(line), np.asarray(res.monitors.centroid)[0], rtol=0, atol=1e-8)


def test_ipi_nonlinear_edges_keep_the_design_orbit(ipi):
    """ImpactX's nonlinear (soft-edge) fringe map has no JACC counterpart; with ImpactX's
    reference particle following it, the design particle stays on axis and the beam stays
    within 3.5e-4 m (measured) of JACC's linear edges, against 3.8e-5 m with linear ones."""
    lat, rp, x = ipi
    cfg = ImpactXExporterConfig(model="exact", edge_model="nonlinear")
    line = ImpactXExporter(config=cfg).write_lattice(lat, rp)
    assert {e.model for e in line if type(e).__name__ == "DipEdge"} == {"nonlinear"}
    design = track_impactx(line, rp, np.zeros((1, 6))).x
    assert np.abs(design).max() < 1e-10  # measured 9e-12 (t)
    res = jacc.track(lat, rp, x[:1000], n_turns=1, record=None)
    diff = np.abs(np.asarray(res.x) - track_impactx(line, rp, x[:1000]).x)
    assert 1e-5 < diff.max() < 1e-3


def _every_element_lattice(nonlinear: bool):
    d = E.Drift(name="d1", l=0.15)
    els = [
        d, E.Quadrupole(name="qa", l=0.1, k1=8.0, dx=1e-3, dy=-5e-4),
        d, E.Quadrupole(name="qb", l=0.1, k1=-7.5, k1s=0.4, tilt=0.05, dtilt=0.01),
        d, E.SBend(name="sb", l=0.3, angle=0.2, k1=0.3, e1=0.05, e2=0.08, fint=0.5, gap=0.04,
                   tilt=0.02, dx=3e-4),
        d, E.SBend(name="sbm", l=0.3, angle=0.1, dx=5e-4, dy=3e-4, tilt=0.01),
        d, E.RBend(name="rb", l=0.25, angle=-0.15, e1=0.02, e2=-0.01, fint=0.3, gap=0.02),
        d, E.DipoleEdge(name="de1", h=0.5, e1=0.1, gap=0.04, fint=0.4, dx=2e-4, tilt=0.03),
        E.SBend(name="cfb", l=0.3, angle=0.15),
        E.DipoleEdge(name="de2", h=0.5, e1=0.1, gap=0.04, fint=0.4, side="exit"),
        d, E.Multipole(name="mp", knl=[0.0, 0.01], ksl=[5e-4, 0.005], dx=1e-4, tilt=0.02),
        d, E.HKicker(name="hk", xangle=2e-4), d, E.VKicker(name="vk", l=0.1, yangle=-1e-4, dx=1e-4),
        d, E.HVCorrector(name="ck", xangle=-1e-4, yangle=2e-4, tilt=0.3),
        d, E.Solenoid(name="so", l=0.2, ks=0.8, dx=1e-4, dy=2e-4, tilt=0.1),
        d, E.RFCavity(name="cav", voltage=2e4, frequency=325e6, lag=0.0),
        d, E.RFCavity(name="cavt", l=0.1, voltage=2e4, frequency=325e6, lag=0.5, dx=1e-4),
        E.Marker(name="m1"), d, E.Monitor(name="bpm"), E.Monitor(name="bpmt", l=0.1), d,
        E.RectangularAperture(name="ra", a=0.02, b=0.01),
        E.EllipticalAperture(name="ea", a=0.02, b=0.015),
        E.Quadrupole(name="qap", l=0.1, k1=1.0, aperture=jacc.Aperture(shape="circle", a=0.01)),
        d,
    ]
    if nonlinear:
        els += [E.Sextupole(name="sx", l=0.1, k2=30.0, k2s=5.0, dx=1e-4), d,
                E.Octupole(name="oc", l=0.1, k3=800.0, k3s=100.0, dy=-2e-4, tilt=0.1), d,
                E.Multipole(name="mpn", knl=[0.0, 0.01, 2.0, 30.0], ksl=[0.0, 0.005, 1.0], dx=1e-4), d,
                E.NonlinearLens(name="nl", knll=2e-6, cnll=0.01, dx=1e-4, tilt=0.05), d]
    return jacc.Lattice.from_elements(els, name="every")


@pytest.fixture(scope="module")
def proton():
    return jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)


def _compare_every(lat, rp, cfg, model, tol, scale):
    x = np.random.default_rng(3).uniform(-1, 1, (200, 6)) * np.array([scale] * 4 + [1e-3, 1e-3])
    res, ref, line = _both(lat, rp, x, cfg, model)
    alive = np.asarray(res.alive)
    np.testing.assert_array_equal(alive, ref.alive)  # the same particles hit the apertures
    assert alive.mean() > 0.5
    diff = np.abs(np.asarray(res.x)[alive] - ref.x[alive])
    assert diff.max() < tol, f"max |JACC - ImpactX| = {diff.max():.3e} per coordinate {diff.max(axis=0)}"
    np.testing.assert_allclose(_centroids(line), np.asarray(res.monitors.centroid)[0], rtol=0, atol=tol)
    return diff.max()


def test_every_linear_element_type(proton):
    lat = _every_element_lattice(nonlinear=False)
    # misaligned, rolled, skew, edges with fringe, thick and thin kickers and cavities,
    # apertures: rounding only (measured 2.7e-14, in t); at 2 mm and 2 mrad the last
    # aperture (a 1 cm circle) stops a third of the particles
    _compare_every(lat, proton, LINEAR, ImpactXExporterConfig.linear_preset(), 1e-12, 2e-3)


def test_every_element_type_paraxial(proton):
    lat = _every_element_lattice(nonlinear=True)
    assert set(lat.count_by_type()) == {
        "Drift", "Marker", "Monitor", "Quadrupole", "SBend", "RBend", "DipoleEdge", "Sextupole",
        "Octupole", "Multipole", "HKicker", "VKicker", "HVCorrector", "Solenoid", "RFCavity",
        "NonlinearLens", "RectangularAperture", "EllipticalAperture"}
    # Model differences, each measured alone at 1 mm and 1 mrad: a skew gradient (JACC,
    # as Xsuite, splits it from the chromatic thick lens; ImpactX rolls a ChrQuad) 5e-8 m;
    # a combined-function bend (Xsuite's expanded curvature terms against ImpactX's exact
    # ExactCFbend) 7e-8 m; one kick per thick sextupole or octupole (JACC, Xsuite) against
    # ImpactX's integration 5e-8 m; the solenoid (ChrAcc) 5e-10 m. Downstream the
    # nonlinear lens (cnll = 1 cm) magnifies what arrives there: 2.2e-6 m in total
    _compare_every(lat, proton, PARAXIAL, jacc.Xsuite(), 1e-5, 1e-3)


def test_names_and_pieces(proton):
    lat = _every_element_lattice(nonlinear=True)
    line = ImpactXExporter(config=LINEAR).write_lattice(lat, proton)
    assert len(line) == len(line.names) == len(set(line.names))
    assert line.names[:9] == ["d1", "qa", "d1:0", "qb", "d1:1", "sb_edge_entry", "sb", "sb_edge_exit", "d1:2"]
    for piece in ("vk_drift_in", "vk", "vk_drift_out", "bpmt_drift", "bpmt", "qap_aper", "mpn_m3"):
        assert piece in line.names
    kinds = {type(e).__name__ for e in line}
    assert {"Drift", "Quad", "Sbend", "CFbend", "DipEdge", "Kicker", "Sol", "LinearMap", "Multipole",
            "ExactMultipole", "NonlinearLens", "Aperture", "Programmable", "Marker"} <= kinds
    exact = ImpactXExporter(config=EXACT).write_lattice(lat, proton)
    kinds = {type(e).__name__ for e in exact}
    assert {"ExactDrift", "ExactQuad", "ExactSbend", "ExactCFbend", "ShortRF", "ChrAcc"} <= kinds
    other = ImpactXExporter(ImpactXExporterConfig(rf_model="buncher", default_monitor_type="beam_monitor",
                                                  n_slices=4)).write_lattice(lat, proton)
    assert {"Buncher", "BeamMonitor"} <= {type(e).__name__ for e in other} and not other.watchpoints
    assert other[other.names.index("qa")].nslice == 4
    bare = ImpactXExporter(ImpactXExporterConfig(install_apertures=False)).write_lattice(lat, proton)
    assert "qap_aper" not in bare.names and type(bare[bare.names.index("ra")]).__name__ == "Marker"


def test_watchpoint_modes_interval_and_buffer(proton):
    lat = jacc.Lattice.from_elements([E.Drift(name="d", l=0.5), E.Quadrupole(name="q", l=0.1, k1=3.0),
                                      E.Monitor(name="bpm"), E.Drift(name="d", l=0.5)], name="cell")
    x = np.random.default_rng(0).normal(0, 1e-3, (50, 6))
    modes = {}
    for mode in ("centroid", "coordinate", "parameter"):
        cfg = ImpactXExporterConfig(default_monitor_type="custom",
                                    watchpoint=WatchpointConfig(mode=mode, interval=2, max_records=2))
        line = ImpactXExporter(config=cfg).write_lattice(lat, proton)
        track_impactx(line, proton, x, periods=5)
        wp = line.watchpoints["bpm"]
        assert isinstance(wp, ImpactXWatchpoint)
        # periods 0, 2, 4 recorded (interval 2), the buffer keeps the last two
        np.testing.assert_array_equal(wp.periods, [2, 4])
        modes[mode] = wp
    ref = np.asarray(jacc.track(lat, proton, x, n_turns=3, record="coordinates",
                                model=ImpactXExporterConfig.linear_preset()).monitors.coordinates)[2, 0]
    np.testing.assert_allclose(modes["coordinate"].records[0]["coordinates"], ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(modes["centroid"].centroids[0], ref.mean(axis=0), rtol=1e-12, atol=1e-15)
    par = modes["parameter"].records[0]
    np.testing.assert_allclose(par["cov"], np.cov(ref, rowvar=False, bias=True), rtol=1e-12, atol=1e-20)
    assert par["n"] == 50 and par["emit_x"] > 0


def test_one_record_per_period_when_placed_twice(proton):
    wp = ImpactXWatchpoint("w")
    drift = impactx.elements.Drift(ds=1.0, name="d")
    line = [drift, wp.element, drift, wp.element]
    track_impactx(line, proton, np.zeros((3, 6)), periods=3)
    np.testing.assert_array_equal(wp.periods, [0, 1, 2])
    wp.reset()
    assert len(wp.records) == 0


def test_track_impactx_keeps_particle_order(proton):
    x = np.random.default_rng(1).normal(0, 1e-3, (40, 6))
    out = track_impactx([impactx.elements.Marker(name="m")], proton, x)
    np.testing.assert_array_equal(out.x, x)
    assert out.alive.all()


@pytest.mark.parametrize("element, match", [
    (E.FieldMap(name="fmap", l=0.2, z=[0.0, 0.1, 0.2], bz=[0.0, 0.1, 0.0]), "FieldMap 'fmap'.*ImpactX"),
    (E.Multipole(name="kick0", knl=[1e-3]), "Multipole 'kick0'.*ImpactX.*knl\\[0\\]"),
    (E.RFCavity(name="acc", voltage=1e5, frequency=325e6, lag=0.25), "RFCavity 'acc'.*ImpactX"),
    (E.Solenoid(name="sol0", ks=0.3), "Solenoid 'sol0'.*ImpactX"),
])
def test_elements_without_counterpart_raise(proton, element, match):
    lat = jacc.Lattice.from_elements([E.Drift(name="d", l=1.0), element])
    with pytest.raises(NotImplementedError, match=match):
        ImpactXExporter().write_lattice(lat, proton)


def test_config():
    assert ImpactXExporterConfig().rf == "linear_map" and EXACT.rf == "short_rf"
    assert ImpactXExporterConfig(model="exact", rf_model="buncher").rf == "buncher"
    with pytest.raises(ValueError, match="n_slices"):
        ImpactXExporterConfig(n_slices=0)
    with pytest.raises(ValueError, match="default_monitor_type"):
        ImpactXExporterConfig(default_monitor_type="file")
    cfg = ImpactXExporterConfig.model_validate_json(EXACT.model_dump_json())
    assert cfg == EXACT


def test_jacc_bridges_imports_without_impactx():
    code = ("import sys; sys.modules['impactx'] = None; sys.modules['xtrack'] = None\n"
            "import jacc, jacc.bridges as b\n"
            "lat = jacc.Lattice.from_elements([jacc.Drift(name='d', l=1.0)])\n"
            "rp = jacc.ReferenceParticle.from_kinetic_energy('proton', 2.5e6)\n"
            "try:\n    b.ImpactXExporter().write_lattice(lat, rp)\nexcept ImportError:\n    print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "ok", out.stderr
