"""Phase space across code boundaries (`jacc.bridges`): ``xt.Particles``, ImpactX particle
containers and openPMD-beamphysics ``ParticleGroup``, each both ways.

Round trips keep the numbers to a few units in the last place; the physics checks send the
same particles through JACC and through the other code (Xsuite and ImpactX: three FODO cells
and a 5 mm aperture; openPMD-beamphysics: its own ballistic drift against JACC's exact
drift) and compare after converting back.
"""

import numpy as np
import pytest

import jacc
from jacc.bridges import (ImpactXExporter, ImpactXExporterConfig, XsuiteExporter,
                          from_impactx_particles, from_particle_group, from_xsuite_particles,
                          to_impactx_particles, to_particle_group, to_xsuite_particles)

E = jacc
EPS = np.finfo(float).eps
SCALE = np.array([2e-3, 2e-4, 2e-3, 2e-4, 1e-3, 1e-4])  # [m, 1, m, 1, m, 1]


@pytest.fixture(scope="module")
def proton():
    return jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)


@pytest.fixture(scope="module")
def beam(proton):
    n = 40
    x = np.random.default_rng(2).uniform(-1, 1, (n, 6)) * SCALE
    x[:3, 0] = [8e-3, -9e-3, 1e-2]  # beyond the 5 mm aperture of `fodo`
    w = np.random.default_rng(3).uniform(0.5, 2.0, n)
    return jacc.PhaseSpace.from_array(x, proton, weights=w, alive=np.arange(n) != 5)


@pytest.fixture(scope="module")
def fodo(proton, beam):
    """The line and JACC's result for the alive particles of `beam` (default models)."""
    qf, qd = E.Quadrupole(name="qf", l=0.1, k1=12.0), E.Quadrupole(name="qd", l=0.1, k1=-12.0)
    d = E.Drift(name="d", l=0.4)
    cell = jacc.Line("cell", [qf, d, qd, d], repeat=3)
    lat = jacc.Lattice.from_line(jacc.Line("fodo", [cell, E.RectangularAperture(name="ap", a=5e-3, b=5e-3)]))
    alive = np.asarray(beam.alive)
    res = jacc.track(lat, proton, np.asarray(beam.coords)[alive], record=None)
    return lat, alive, np.asarray(res.x), np.asarray(res.alive)


def _same_coords(back, ps, ulps=4):
    c0, c1 = np.asarray(ps.coords), np.asarray(back.coords)
    np.testing.assert_array_equal(c1[:, :4], c0[:, :4])  # copied
    # t through zeta = beta0 t and back, pt through delta(pt) and back: a few roundings
    np.testing.assert_allclose(c1[:, 4:], c0[:, 4:], rtol=ulps * EPS, atol=0)


# ---------------------------------------------------------------- Xsuite


def test_xsuite_round_trip(beam, proton):
    xt = pytest.importorskip("xtrack")
    parts = to_xsuite_particles(beam)
    assert isinstance(parts, xt.Particles)
    # xtrack moves lost particles to the end of its arrays; particle_id is the index in beam
    ids = np.asarray(parts.particle_id)
    np.testing.assert_array_equal(np.asarray(parts.state), np.where(np.asarray(beam.alive)[ids], 1, 0))
    np.testing.assert_array_equal(np.asarray(parts.x), np.asarray(beam.coords)[ids, 0])
    back = from_xsuite_particles(parts)  # reference particle rebuilt from mass0, q0, p0c
    assert back.ref.species == "proton" and back.ref.p0c == proton.p0c
    assert back.ref.mass0 == proton.mass0 and back.ref.beta0 == pytest.approx(proton.beta0, rel=4 * EPS)
    _same_coords(back, beam)
    np.testing.assert_array_equal(back.weights, beam.weights)
    np.testing.assert_array_equal(back.alive, beam.alive)
    again = to_xsuite_particles(from_xsuite_particles(parts, proton))  # the other way
    for k in ("x", "px", "y", "py", "weight", "state"):
        np.testing.assert_array_equal(getattr(again, k), getattr(parts, k), err_msg=k)
    for k in ("zeta", "delta"):
        np.testing.assert_allclose(getattr(again, k), getattr(parts, k), rtol=4 * EPS, err_msg=k)


def test_xsuite_physics(beam, proton, fodo):
    pytest.importorskip("xtrack")
    lat, alive, x_jacc, alive_jacc = fodo
    line = XsuiteExporter().write_lattice(lat, proton)
    line.build_tracker()
    parts = to_xsuite_particles(beam)
    line.track(parts)
    out = from_xsuite_particles(parts, proton)
    np.testing.assert_array_equal(np.asarray(out.alive)[alive], alive_jacc)
    assert not np.asarray(out.alive)[5]  # lost before: xtrack leaves it alone
    ok = np.asarray(out.alive)
    # the same models (JACC's default preset is Xsuite's): rounding only (measured 1e-14 m)
    np.testing.assert_allclose(np.asarray(out.coords)[ok], x_jacc[alive_jacc], rtol=0, atol=1e-12)


def test_xsuite_reference_mismatch(beam):
    pytest.importorskip("xtrack")
    other = jacc.ReferenceParticle.from_kinetic_energy("proton", 3e6)
    with pytest.raises(ValueError, match="p0c"):
        from_xsuite_particles(to_xsuite_particles(beam), other)
    with pytest.raises(TypeError, match="PhaseSpace"):
        to_xsuite_particles(np.zeros((2, 6)))


# ---------------------------------------------------------------- ImpactX


@pytest.fixture
def sim():
    impactx = pytest.importorskip("impactx")
    s = impactx.ImpactX()
    s.verbose, s.tiny_profiler, s.space_charge, s.diagnostics = 0, False, False, False
    s.slice_step_diagnostics = False
    s.init_grids()
    yield s
    s.finalize()


def test_impactx_round_trip(beam, proton, sim):
    n = to_impactx_particles(beam, sim.beam)
    alive = np.asarray(beam.alive)
    assert n == alive.sum() == sim.beam.total_number_of_particles()
    back = from_impactx_particles(sim.beam, proton)
    # sign flips and copies: exact
    np.testing.assert_array_equal(back.coords, np.asarray(beam.coords)[alive])
    np.testing.assert_array_equal(back.weights, np.asarray(beam.weights)[alive])
    assert np.asarray(back.alive).all()
    ref = from_impactx_particles(sim.beam).ref  # rebuilt from ImpactX's reference particle
    # ImpactX keeps its reference energy as pt: the kinetic energy returns to 2e-14 relative
    assert ref.species == "proton" and ref.p0c == pytest.approx(proton.p0c, rel=1e-13)


def test_impactx_container_to_phase_space_and_back(proton, sim):
    """The other way: particles ImpactX holds -> PhaseSpace -> a container -> the same."""
    impactx = pytest.importorskip("impactx")
    from jacc.bridges._watchpoint import particle_arrays

    sim.beam.ref.set_charge_qe(1.0).set_mass_MeV(proton.mass0 * 1e-6).set_kin_energy_MeV(2.5)
    cols = np.random.default_rng(7).normal(size=(6, 25)) * 1e-3
    sim.beam.add_n_particles(*cols, 1.0 / proton.mass0, w=np.full(25, 3.0))
    ids, first = particle_arrays(sim.beam)
    ps = from_impactx_particles(sim.beam, proton)
    s2 = impactx.ImpactX()
    try:
        s2.verbose, s2.tiny_profiler, s2.diagnostics = 0, False, False
        s2.init_grids()
        to_impactx_particles(ps, s2.beam)
        ids2, second = particle_arrays(s2.beam)
        np.testing.assert_array_equal(second[np.argsort(ids2)], first[np.argsort(ids)])
        assert s2.beam.ref.kin_energy_MeV == pytest.approx(2.5, rel=1e-14)
    finally:
        s2.finalize()


def test_impactx_physics(beam, proton, fodo):
    pytest.importorskip("impactx")
    from jacc.bridges import track_impactx

    lat, alive, x_jacc, alive_jacc = fodo
    # ImpactX's paraxial drifts and quadrupoles are JACC's default models
    line = ImpactXExporter(ImpactXExporterConfig(model="paraxial")).write_lattice(lat, proton)
    import impactx

    sim = impactx.ImpactX()
    try:
        sim.verbose, sim.tiny_profiler, sim.space_charge, sim.diagnostics = 0, False, False, False
        sim.init_grids()
        to_impactx_particles(beam, sim.beam)
        sim.lattice.extend(list(line))
        sim.track_particles()
        out = from_impactx_particles(sim.beam, proton)  # the survivors, in input order
    finally:
        sim.finalize()
    # rounding only; ImpactX's t carries ~1e-12 of its L / beta0 terms (measured 8e-13 m)
    np.testing.assert_allclose(np.asarray(out.coords), x_jacc[alive_jacc], rtol=0, atol=1e-11)
    # the same through track_impactx (coordinates in, coordinates out)
    ref = track_impactx(line, proton, np.asarray(beam.coords)[alive])
    np.testing.assert_array_equal(ref.alive, alive_jacc)


# ---------------------------------------------------------------- openPMD


def test_openpmd_round_trips(beam, proton):
    pytest.importorskip("beamphysics")
    pg = to_particle_group(beam, s=2.0, t_ref=1e-9)
    back = from_particle_group(pg, proton, t_ref=1e-9)
    c0, c1 = np.asarray(beam.coords), np.asarray(back.coords)
    np.testing.assert_allclose(c1[:, [0, 2]], c0[:, [0, 2]], rtol=0, atol=0)
    np.testing.assert_allclose(c1[:, [1, 3]], c0[:, [1, 3]], rtol=2 * EPS)  # times, over p0c
    # t: c (t_ref - t) with t_ref = 1 ns: absolute rounding of 1e-9 s times c, ~1e-16 m
    np.testing.assert_allclose(c1[:, 4], c0[:, 4], rtol=0, atol=10 * EPS * 1e-9 * 3e8)
    # pt through p = p0 (1 + delta) [eV/c]: rounding of p, ~eps / beta0
    np.testing.assert_allclose(c1[:, 5], c0[:, 5], rtol=0, atol=10 * EPS / proton.beta0)
    np.testing.assert_array_equal(back.alive, beam.alive)
    np.testing.assert_allclose(back.weights, beam.weights, rtol=2 * EPS)
    again = to_particle_group(back, s=2.0, t_ref=1e-9)  # the other way: group -> group
    for k in ("x", "px", "y", "py", "pz", "t", "weight", "status", "z"):
        np.testing.assert_allclose(again[k], pg[k], rtol=4 * EPS, atol=0, err_msg=k)


def test_openpmd_physics_drift(beam, proton):
    """openPMD-beamphysics' ballistic drift to z = L against JACC's exact drift of length L."""
    pytest.importorskip("beamphysics")
    from jacc.physics.base import Flow
    from jacc.physics.drift import Drift

    length = 1.5
    lat = jacc.Lattice.from_elements([E.Drift(name="d", l=length)])
    exact = jacc.Xsuite(models={"Drift": (Drift(exact=True), Flow())})
    ps = jacc.PhaseSpace.from_array(np.asarray(beam.coords)[3:], proton)
    res = jacc.track(lat, proton, ps.coords, model=exact, record=None)
    pg = to_particle_group(ps, s=0.0)
    pg.drift_to_z(length)
    t_ref = length / (proton.beta0 * jacc.particles.C_LIGHT)  # the reference's arrival
    out = from_particle_group(pg, proton, t_ref=t_ref)
    # two exact drifts in two codes: rounding of 1.5 m paths (x, y) and of ~7e-8 s
    # times c (t: the difference of two 20 m terms), measured 2e-19 m and 8e-15 m
    np.testing.assert_allclose(np.asarray(out.coords)[:, :4], np.asarray(res.x)[:, :4], rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.asarray(out.coords)[:, 4], np.asarray(res.x)[:, 4], rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(out.coords)[:, 5], np.asarray(res.x)[:, 5], rtol=0, atol=1e-14)
    assert np.ptp(np.asarray(res.x)[:, 4] - np.asarray(ps.coords)[:, 4]) > 1e-6  # t did change
