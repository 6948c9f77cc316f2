"""ReferenceParticle and the coordinate converters (MAD-X <-> Xsuite, ImpactX, openPMD)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.constants as sc
from pydantic import ValidationError

from jacc.containers import PhaseSpace
from jacc.particles import (
    MASS_ELECTRON_CODATA2018_EV,
    MASS_ELECTRON_EV,
    MASS_PROTON_CODATA2018_EV,
    MASS_PROTON_EV,
    ReferenceParticle,
    codata2018_mass,
    delta_from_pt,
    from_particle_group,
    impactx_particles_kwargs,
    impactx_to_madx,
    madx_to_impactx,
    madx_to_xsuite,
    pt_from_delta,
    to_particle_group,
    xsuite_particles_kwargs,
    xsuite_to_madx,
)
from jacc.physics.base import Reference

EPS = np.finfo(float).eps

CASES = [
    ("proton", 2.5e6, {}),                      # IOTA proton injector
    ("electron", 150e6, {}),                    # IOTA electrons
    ("positron", 1e3, {}),
    ("antiproton", 8e9, {}),
    ("Pb208+54", 4.2e9 * 208, {"mass0": 193.6872729e9, "charge": 54}),
    ("H-", 400e6, {"mass0": MASS_PROTON_EV + 2 * MASS_ELECTRON_EV, "charge": -1}),
]


def _random_madx(n, seed=0, scale=1e-3):
    """MAD-X coordinates spanning several orders of magnitude, both signs."""
    rng = np.random.default_rng(seed)
    mag = 10.0 ** rng.uniform(-9, 0, size=(n, 6))
    return scale * mag * rng.choice([-1.0, 1.0], size=(n, 6))


# ---------------------------------------------------------------- reference particle


def test_seed_numbers_proton_2p5_mev():
    rp = ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    # Exact float: the seed computed p0c = sqrt(E^2 - m^2), beta0 = p0c / E with scipy's CODATA 2022.
    assert rp.beta0 == 0.07285411307700568
    # The seed quotes p0c to the meV.
    assert abs(rp.p0c - 68539116.183) < 1e-3
    assert rp.mass0 == sc.value("proton mass energy equivalent in MeV") * 1e6
    assert rp.kin_energy0 == 2.5e6 and rp.charge == 1.0


@pytest.mark.parametrize("species,kin,kw", CASES)
def test_identities(species, kin, kw):
    rp = ReferenceParticle.from_kinetic_energy(species, kin, **kw)
    e, p, m = rp.energy0, rp.p0c, rp.mass0
    # A few ulps: each identity is two or three rounded operations away from the stored fields.
    assert abs(e * e - p * p - m * m) <= 4 * EPS * e * e
    assert abs(rp.gamma0 * rp.beta0 * m - p) <= 4 * EPS * p
    assert abs(rp.brho - p / (sc.c * abs(rp.charge))) <= 2 * EPS * rp.brho
    assert abs(e - m - rp.kin_energy0) <= 2 * EPS * e
    assert abs(rp.gamma0 - e / m) <= 2 * EPS * rp.gamma0
    assert abs(rp.beta0 - math.sqrt(1 - 1 / rp.gamma0**2)) <= 1e-12 * rp.beta0  # 1/gamma^2 cancels for slow beams


@pytest.mark.parametrize("species,kin,kw", CASES)
def test_every_constructor_gives_the_same_particle(species, kin, kw):
    rp = ReferenceParticle.from_kinetic_energy(species, kin, **kw)
    others = [
        ReferenceParticle.from_energy(species, rp.energy0, **kw),
        ReferenceParticle.from_p0c(species, rp.p0c, **kw),
        ReferenceParticle.from_gamma(species, rp.gamma0, **kw),
        ReferenceParticle.from_brho(species, rp.brho, **kw),
    ]
    for other in others:
        assert other.species == rp.species and other.charge == rp.charge
        for f in ("p0c", "kin_energy0", "energy0", "gamma0", "beta0", "brho"):
            # p0c = sqrt(E^2 - m^2) carries a relative rounding error ~ eps / beta^2 (slow beams,
            # 2e-14 for 1 keV positrons); the other routes pass it on to the kinetic energy.
            tol = 4 * EPS / rp.beta0**2
            assert getattr(other, f) == pytest.approx(getattr(rp, f), rel=tol, abs=0), f


def test_species_table_and_overrides():
    e = ReferenceParticle.from_kinetic_energy("electron", 1e6)
    assert (e.mass0, e.charge) == (MASS_ELECTRON_EV, -1.0)
    ap = ReferenceParticle.from_kinetic_energy("antiproton", 1e6)
    assert (ap.mass0, ap.charge) == (MASS_PROTON_EV, -1.0)
    p18 = ReferenceParticle.from_kinetic_energy("proton", 2.5e6, mass0=codata2018_mass("proton"))
    assert p18.mass0 == MASS_PROTON_CODATA2018_EV and p18.charge == 1.0
    assert codata2018_mass("positron") == MASS_ELECTRON_CODATA2018_EV
    with pytest.raises(ValueError, match="known"):
        codata2018_mass("muon")


def test_masses_agree_with_xtrack():
    import xtrack as xt

    # xtrack 0.118 tabulates CODATA 2022 too; its decimal literal and scipy's MeV * 1e6 differ by <= 1 ulp.
    assert MASS_PROTON_EV == pytest.approx(xt.PROTON_MASS_EV, rel=2 * EPS)
    assert MASS_ELECTRON_EV == pytest.approx(xt.ELECTRON_MASS_EV, rel=2 * EPS)


@pytest.mark.madx
def test_codata2018_matches_madx_beam():
    from cpymad.madx import Madx

    madx = Madx(stdout=False)
    try:
        # MAD-X's own constants: pmass, emass [GeV].
        assert madx.globals.pmass * 1e9 == MASS_PROTON_CODATA2018_EV
        assert madx.globals.emass * 1e9 == MASS_ELECTRON_CODATA2018_EV
        rp = ReferenceParticle.from_kinetic_energy("proton", 2.5e6, mass0=MASS_PROTON_CODATA2018_EV)
        madx.command.beam(particle="proton", energy=rp.energy0 * 1e-9)
        ours = {"beta": rp.beta0, "gamma": rp.gamma0, "pc": rp.p0c * 1e-9, "brho": rp.brho}
        for key, value in ours.items():
            # MAD-X computes pc from its energy in GeV; slow protons amplify its rounding by 1/beta^2.
            assert madx.eval(f"beam->{key}") == pytest.approx(value, rel=1e-12), key
    finally:
        madx.quit()


def test_against_xtrack_reference():
    import xtrack as xt

    rp = ReferenceParticle.from_p0c("proton", 68539116.18302412)
    p = xt.Particles(mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c)
    # Same inputs (mass0, p0c), formulas a few roundings apart.
    assert p.beta0[0] == pytest.approx(rp.beta0, rel=4 * EPS)
    assert p.gamma0[0] == pytest.approx(rp.gamma0, rel=4 * EPS)
    assert p.energy0[0] == pytest.approx(rp.energy0, rel=4 * EPS)


def test_json_round_trip_is_lossless():
    for species, kin, kw in CASES:
        rp = ReferenceParticle.from_kinetic_energy(species, kin, **kw)
        back = ReferenceParticle.model_validate_json(rp.model_dump_json())
        assert back == rp
        assert all(getattr(back, f) == getattr(rp, f) for f in ReferenceParticle.model_fields)


def test_validate_from_one_energy_field():
    rp = ReferenceParticle.model_validate({"species": "electron", "kin_energy0": 150e6})
    assert rp == ReferenceParticle.from_kinetic_energy("electron", 150e6)
    ion = ReferenceParticle.model_validate_json(
        '{"species": "ion", "mass0": 3.7e9, "charge": 2, "p0c": 1e9}'
    )
    assert ion == ReferenceParticle.from_p0c("ion", 1e9, mass0=3.7e9, charge=2)
    rp = ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    by_beta = ReferenceParticle.model_validate({"species": "proton", "beta0": rp.beta0})
    # gamma0 = 1/sqrt((1 - beta)(1 + beta)): a few roundings, amplified by 1/beta^2 in kin_energy0.
    assert by_beta.kin_energy0 == pytest.approx(rp.kin_energy0, rel=4 * EPS / rp.beta0**2)


def test_validation_errors():
    with pytest.raises(ValidationError, match="exactly one"):
        ReferenceParticle.model_validate({"species": "proton", "p0c": 1e9, "energy0": 2e9})
    good = ReferenceParticle.from_kinetic_energy("proton", 2.5e6).model_dump()
    with pytest.raises(ValidationError, match="inconsistent"):
        ReferenceParticle.model_validate({**good, "p0c": good["p0c"] * (1 + 1e-9)})
    rp = ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    with pytest.raises(ValidationError):
        rp.p0c = 1.0  # frozen


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ReferenceParticle.from_kinetic_energy("muon", 1e6), r"unknown species 'muon'.*electron.*proton"),
        (lambda: ReferenceParticle.from_kinetic_energy("ion", 1e6, mass0=1e9), "charge"),
        (lambda: ReferenceParticle.from_kinetic_energy("ion", 1e6, charge=1), "mass0"),
        (lambda: ReferenceParticle.from_kinetic_energy("proton", -1.0), "kin_energy0.*positive"),
        (lambda: ReferenceParticle.from_kinetic_energy("proton", 0.0), "kin_energy0.*positive"),
        (lambda: ReferenceParticle.from_kinetic_energy("proton", float("nan")), "kin_energy0.*finite"),
        (lambda: ReferenceParticle.from_p0c("proton", float("inf")), "p0c.*finite"),
        (lambda: ReferenceParticle.from_energy("proton", 1e6), "energy0.*rest mass"),
        (lambda: ReferenceParticle.from_gamma("electron", 1.0), "gamma0"),
        (lambda: ReferenceParticle.from_brho("proton", -0.1), "brho"),
        (lambda: ReferenceParticle.from_kinetic_energy("proton", 1e6, mass0=-1.0), "mass0"),
        (lambda: ReferenceParticle.from_kinetic_energy("proton", 1e6, charge=0), "charge.*nonzero"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_reference_tuple():
    rp = ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    ref = rp.reference()
    assert isinstance(ref, Reference)
    assert ref == (rp.beta0, rp.gamma0, rp.p0c, rp.mass0, rp.charge)


# ---------------------------------------------------------------- Xsuite


@pytest.fixture(scope="module")
def proton():
    return ReferenceParticle.from_kinetic_energy("proton", 2.5e6)


@pytest.mark.xsuite
@pytest.mark.parametrize("species,kin,kw", CASES[:2])
def test_xsuite_converter_against_xtrack(species, kin, kw):
    import xtrack as xt

    rp = ReferenceParticle.from_kinetic_energy(species, kin, **kw)
    madx = _random_madx(200)
    # xtrack builds delta from ptau itself; compare with our converter.
    parts = xt.Particles(mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c,
                         x=madx[:, 0], px=madx[:, 1], y=madx[:, 2], py=madx[:, 3],
                         zeta=madx[:, 4] * rp.beta0, ptau=madx[:, 5])
    ours = madx_to_xsuite(madx, rp)
    np.testing.assert_array_equal(ours[:, :4], madx[:, :4])
    assert np.allclose(ours[:, 4], parts.zeta, rtol=0, atol=0)
    # xtrack evaluates sqrt(1 + 2 ptau/beta0 + ptau^2) - 1 directly: absolute rounding ~ eps (and
    # eps/beta0 for slow protons), where ours is cancellation-free.
    np.testing.assert_allclose(ours[:, 5], parts.delta, rtol=0, atol=10 * EPS / rp.beta0)
    # The other way: xtrack given delta, our pt against its ptau (same reasoning).
    parts2 = xt.Particles(**xsuite_particles_kwargs(madx, rp))
    np.testing.assert_allclose(parts2.ptau, madx[:, 5], rtol=0, atol=10 * EPS / rp.beta0)
    np.testing.assert_allclose(parts2.zeta / rp.beta0, madx[:, 4], rtol=2 * EPS, atol=0)  # one division
    np.testing.assert_allclose(xsuite_to_madx(ours, rp), madx, rtol=1e-15, atol=0)


@pytest.mark.xsuite
def test_xsuite_tracking_helper_agrees(proton):
    """tests/xsuite_ref.py (MAD-X coordinates through xtrack) agrees with the converter."""
    import xtrack as xt
    from xsuite_ref import xsuite_particles

    madx = _random_madx(20, seed=3)
    parts = xsuite_particles(madx, mass0=proton.mass0, q0=proton.charge, p0c=proton.p0c)
    ours = xt.Particles(**xsuite_particles_kwargs(madx, proton))
    np.testing.assert_allclose(ours.delta, parts.delta, rtol=0, atol=10 * EPS / proton.beta0)  # as above


def test_xsuite_round_trip(proton):
    madx = _random_madx(1000)
    # Cancellation-free formulas: a handful of roundings, relative error < 1e-15.
    np.testing.assert_allclose(xsuite_to_madx(madx_to_xsuite(madx, proton), proton), madx, rtol=1e-15, atol=0)
    xs = madx_to_xsuite(madx, proton)
    np.testing.assert_allclose(madx_to_xsuite(xsuite_to_madx(xs, proton), proton), xs, rtol=1e-15, atol=0)


def test_delta_pt_exact_relation():
    beta0 = 0.3
    pt = np.array([-0.1, -1e-3, -1e-12, 0.0, 1e-12, 1e-3, 0.7])  # physical: E > m, i.e. pt > -0.153 here
    delta = delta_from_pt(pt, beta0)
    # Independent route through energies: (1 + delta)^2 = (1/beta0 + pt)^2 - (1/beta0^2 - 1).
    expected = np.sqrt((1 / beta0 + pt) ** 2 - 1 / beta0**2 + 1) - 1
    np.testing.assert_allclose(delta, expected, rtol=0, atol=1e-15)  # expected loses ~eps absolutely
    np.testing.assert_allclose(pt_from_delta(delta, beta0), pt, rtol=1e-15, atol=0)  # cancellation-free inverse
    # Small deviations keep full relative precision: delta = pt / beta0 to first order.
    assert delta[4] == pytest.approx(1e-12 / beta0, rel=1e-11)  # second order term pt/2 * (1 - 1/beta0^2)


def test_xsuite_converter_under_jax(proton):
    madx = jnp.asarray(_random_madx(5))
    xs = jax.jit(madx_to_xsuite, static_argnums=1)(madx, proton)
    assert isinstance(xs, jax.Array)
    np.testing.assert_allclose(xs, madx_to_xsuite(np.asarray(madx), proton), rtol=2 * EPS)  # same formulas
    # d delta / d pt = E / (p0 c) / (p / p0) = (1/beta0 + pt) / (1 + delta)
    pt = 3e-3
    g = jax.grad(lambda v: delta_from_pt(v, proton.beta0))(jnp.asarray(pt))
    d = delta_from_pt(pt, proton.beta0)
    assert float(g) == pytest.approx((1 / proton.beta0 + pt) / (1 + d), rel=1e-14)  # a few roundings
    one = madx_to_xsuite(madx[0], proton)  # a single 6-vector
    assert one.shape == (6,)


# ---------------------------------------------------------------- ImpactX


def test_impactx_signs_and_round_trip(proton):
    madx = _random_madx(100)
    ix = madx_to_impactx(madx)
    np.testing.assert_array_equal(ix[:, :4], madx[:, :4])
    np.testing.assert_array_equal(ix[:, 4:], -madx[:, 4:])
    np.testing.assert_array_equal(impactx_to_madx(ix), madx)  # sign flips are exact
    kw = impactx_particles_kwargs(madx, proton, weights=np.full(100, 2.0))
    np.testing.assert_array_equal(kw["t"], -madx[:, 4])
    np.testing.assert_array_equal(kw["pt"], -madx[:, 5])
    assert kw["qm"] == 1.0 / proton.mass0 and np.all(kw["w"] == 2.0)


@pytest.fixture(scope="module")
def impactx_drift():
    """Track ImpactX-coordinate particles through an ImpactX ExactDrift; returns a function."""
    impactx = pytest.importorskip("impactx")

    def track(ref, madx, length):
        sim = impactx.ImpactX()
        try:
            sim.space_charge = False
            sim.diagnostics = False
            sim.init_grids()
            sim.beam.ref.set_charge_qe(ref.charge).set_mass_MeV(ref.mass0 * 1e-6).set_kin_energy_MeV(
                ref.kin_energy0 * 1e-6
            )
            beta_ix = sim.beam.ref.beta
            sim.beam.add_n_particles(**impactx_particles_kwargs(madx, ref))
            sim.lattice.extend([impactx.elements.ExactDrift(name="d", ds=length)])
            sim.track_particles()
            df = sim.beam.to_df(local=True).reset_index(drop=True).sort_values("idcpu")  # id order = input order
            cols = ["position_x", "momentum_x", "position_y", "momentum_y", "position_t", "momentum_t"]
            return impactx_to_madx(df[cols].to_numpy()), beta_ix
        finally:
            sim.finalize()

    return track


@pytest.mark.xsuite
@pytest.mark.parametrize("species,kin", [("proton", 2.5e6), ("electron", 150e6)])
def test_impactx_converter_against_impactx_and_xtrack(impactx_drift, species, kin):
    """The same exact drift in ImpactX and xtrack agrees once both are converted to MAD-X."""
    import xtrack as xt

    ref = ReferenceParticle.from_kinetic_energy(species, kin)
    madx = _random_madx(8, seed=1, scale=1e-2)
    madx[:, 5] = np.linspace(-5e-3, 5e-3, 8)  # energy spread makes the t sign convention visible
    out_ix, beta_ix = impactx_drift(ref, madx, 2.0)
    # ImpactX derives beta from the same mass and kinetic energy.
    assert beta_ix == pytest.approx(ref.beta0, rel=1e-12)
    line = xt.Line(elements=[xt.DriftExact(length=2.0)])
    line.build_tracker()
    parts = xt.Particles(**xsuite_particles_kwargs(madx, ref))
    line.track(parts)
    xs = np.stack([parts.x, parts.px, parts.y, parts.py, parts.zeta, parts.delta], axis=1)
    out_xt = xsuite_to_madx(xs, ref)
    # Same exact drift in two codes: x, px, y, py, pt agree to rounding of 1e-2 offsets over 2 m.
    np.testing.assert_allclose(out_ix[:, [0, 1, 2, 3, 5]], out_xt[:, [0, 1, 2, 3, 5]], rtol=0, atol=1e-12)
    # t: ImpactX's drift carries a ~1e-12 relative error on its L/beta0 terms (measured 2e-11 m for
    # 2.5 MeV protons against a 40-digit evaluation, where xtrack is within 4e-14 m). A wrong sign
    # convention would miss by the t change itself (1e-7 to 2 m here).
    np.testing.assert_allclose(out_ix[:, 4], out_xt[:, 4], rtol=0, atol=1e-10)
    assert np.ptp(out_xt[:, 4] - madx[:, 4]) > 1e-6


# ---------------------------------------------------------------- openPMD-beamphysics


@pytest.fixture(scope="module")
def beam(proton):
    madx = _random_madx(500, seed=7)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, 500)
    alive = np.arange(500) % 17 != 0
    return PhaseSpace.from_array(madx, proton, weights=weights, alive=alive)


def test_particle_group_round_trip(beam, proton):
    pg = to_particle_group(beam, s=1.5, t_ref=0.0)
    assert np.all(pg.z == 1.5) and pg.species == "proton"
    back = from_particle_group(pg, proton)
    c0, c1 = np.asarray(beam.coords), np.asarray(back.coords)
    # x, px, y, py, t: one multiplication and one division by p0c or c.
    np.testing.assert_allclose(c1[:, :5], c0[:, :5], rtol=4 * EPS, atol=0)
    # pt goes through absolute momenta p = p0 (1 + delta) [eV/c]: absolute rounding ~ eps / beta0.
    np.testing.assert_allclose(c1[:, 5], c0[:, 5], rtol=0, atol=10 * EPS / proton.beta0)
    np.testing.assert_allclose(back.weights, beam.weights, rtol=4 * EPS)
    np.testing.assert_array_equal(back.alive, beam.alive)
    assert back.ref == proton


def test_particle_group_physics(beam, proton):
    """The group's own energies, charge and Bmad coordinates agree with MAD-X's meaning."""
    from beamphysics.interfaces.bmad import particlegroup_to_bmad

    pg = to_particle_group(beam, t_ref=1e-6)
    c = np.asarray(beam.coords)
    # pt = (E - E0) / p0c; the group's E uses the same CODATA 2022 proton mass. E ~ 1e9 eV
    # rounded to eps, divided by p0c ~ 7e7 eV.
    np.testing.assert_allclose((pg.energy - proton.energy0) / proton.p0c, c[:, 5], rtol=0, atol=1e-13)
    total = float(np.sum(beam.weights)) * sc.e
    assert pg["charge"] == pytest.approx(total, rel=1e-14)  # weights are macro-charges [C]
    bmad = particlegroup_to_bmad(pg, p0c=proton.p0c, tref=1e-6)
    # Bmad pz is delta and z = -beta c (t - tref) = beta * (MAD-X t): independent formulas in
    # openPMD-beamphysics. Absolute times ~1e-6 s leave ~1e-22 s rounding, i.e. ~1e-13 m.
    np.testing.assert_allclose(bmad["pz"], madx_to_xsuite(c, proton)[:, 5], rtol=0, atol=1e-14)
    np.testing.assert_allclose(bmad["z"], pg.beta * c[:, 4], rtol=0, atol=1e-13)
    np.testing.assert_allclose(bmad["px"], c[:, 1], rtol=4 * EPS)


def test_particle_group_errors(beam, proton):
    apbar = PhaseSpace.from_array(np.zeros((2, 6)), ReferenceParticle.from_kinetic_energy("antiproton", 1e9))
    with pytest.raises(ValueError, match="species"):
        to_particle_group(apbar)
    pg = to_particle_group(beam)
    with pytest.raises(ValueError, match="species"):
        from_particle_group(pg, ReferenceParticle.from_kinetic_energy("electron", 1e6))
    pg.z[0] += 1e-3
    with pytest.raises(ValueError, match="drift_to_z"):
        from_particle_group(pg, proton)
