"""Straight-element maps against xtrack 0.118 (one pass), first-order maps, method plumbing.

Every case states the model on both sides: the JACC physics object and method, and the
xtrack element with the model/integrator settings that compute the same map (xtrack's
defaults where none are named). Particles: 150 MeV electrons and 2.5 MeV protons
(beta0 = 0.0729, where the longitudinal terms are large), mm/mrad amplitudes, |pt| <= 1e-3.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xtrack as xt

from jacc.physics.aperture import inside_circle, inside_ellipse, inside_rectangle
from jacc.physics.base import DriftKick, ElementPhysics, Flow, Linear, Method, Reference
from jacc.physics.drift import Drift
from jacc.physics.kicker import Kicker
from jacc.physics.misalign import Misaligned
from jacc.physics.multipole import Multipole, Octupole, Sextupole
from jacc.physics.nllens import NonlinearLens
from jacc.physics.quadrupole import ChromaticQuadrupole, Quadrupole
from jacc.physics.rfcavity import RFCavity
from jacc.physics.solenoid import Solenoid
from xsuite_ref import xsuite_particles, xsuite_reference, xsuite_track

# Both codes evaluate the same formulas in float64; what is left is rounding (<1e-14).
TOL_XSUITE = 1e-12


reference = xsuite_reference


SPECIES = ("electron", "proton")


def particles(n=48, seed=7):
    """A batch of MAD-X coordinates with realistic amplitudes (and two on the midplane)."""
    rng = np.random.default_rng(seed)
    scale = np.array([3e-3, 2e-3, 3e-3, 2e-3, 1e-2, 1e-3])
    x = rng.uniform(-1.0, 1.0, (n, 6)) * scale
    x[0, 2:4] = 0.0  # midplane particles: exercise y = 0 branches (nonlinear lens, roll)
    x[1, :] = 0.0
    return x


@dataclasses.dataclass(frozen=True)
class Case:
    """One element model: JACC side and the equivalent xtrack element."""

    name: str
    phys: ElementPhysics
    method: Method
    params: dict
    xtrack: Callable[[], object]

    def jparams(self):
        return {k: jnp.asarray(v, dtype=float) for k, v in self.params.items()}


QUAD = dict(l=0.3, k1=4.2, k1s=0.0)
QUAD_SKEW = dict(l=0.3, k1=-3.1, k1s=1.2)
MIS = dict(dx=1.2e-3, dy=-0.8e-3, tilt=0.25)
KNL = [1.5e-3, 0.35, 22.0, 350.0, 4e3]
KSL = [0.0, 0.12, -6.0, 40.0, -1e3]
RF = dict(l=0.4, voltage=2e4, frequency=30e6, lag=0.1)
NLL = dict(knll=5e-5, cnll=9e-3)

CASES = [
    # Drift: xtrack default model "adaptive" = expanded.
    Case("drift-expanded", Drift(), Flow(), dict(l=1.3), lambda: xt.Drift(length=1.3)),
    Case("drift-exact", Drift(exact=True), Flow(), dict(l=1.3), lambda: xt.Drift(length=1.3, model="exact")),
    # Quadrupole: xtrack default mat-kick-mat, uniform, 1 kick.
    Case("quad-default", ChromaticQuadrupole(), DriftKick(), QUAD, lambda: xt.Quadrupole(length=0.3, k1=4.2)),
    Case(
        "quad-default-skew", ChromaticQuadrupole(), DriftKick(), QUAD_SKEW,
        lambda: xt.Quadrupole(length=0.3, k1=-3.1, k1s=1.2),
    ),
    Case(
        "quad-default-zero", ChromaticQuadrupole(), DriftKick(), dict(l=0.3, k1=0.0, k1s=0.0),
        lambda: xt.Quadrupole(length=0.3, k1=0.0),
    ),
    Case(
        "quad-matkickmat-uniform3", ChromaticQuadrupole(), DriftKick(order=2, slices=3), QUAD_SKEW,
        lambda: xt.Quadrupole(length=0.3, k1=-3.1, k1s=1.2, model="mat-kick-mat", integrator="uniform",
                              num_multipole_kicks=3),
    ),
    Case(
        "quad-dkd-exact-uniform3", Quadrupole(exact_drift=True), DriftKick(order=2, slices=3), QUAD_SKEW,
        lambda: xt.Quadrupole(length=0.3, k1=-3.1, k1s=1.2, model="drift-kick-drift-exact",
                              integrator="uniform", num_multipole_kicks=3),
    ),
    Case(
        "quad-dkd-expanded-yoshida4", Quadrupole(), DriftKick(order=4, slices=2), QUAD_SKEW,
        lambda: xt.Quadrupole(length=0.3, k1=-3.1, k1s=1.2, model="drift-kick-drift-expanded",
                              integrator="yoshida-4", num_multipole_kicks=6),
    ),
    # Sextupole/octupole: xtrack default drift-kick-drift-expanded, uniform, 1 kick.
    Case(
        "sext-default", Sextupole(), DriftKick(), dict(l=0.2, k2=35.0, k2s=-12.0),
        lambda: xt.Sextupole(length=0.2, k2=35.0, k2s=-12.0),
    ),
    Case(
        "sext-exact-yoshida4", Sextupole(exact_drift=True), DriftKick(order=4, slices=1),
        dict(l=0.2, k2=35.0, k2s=-12.0),
        lambda: xt.Sextupole(length=0.2, k2=35.0, k2s=-12.0, model="drift-kick-drift-exact",
                             integrator="yoshida-4", num_multipole_kicks=3),
    ),
    Case(
        "oct-default", Octupole(), DriftKick(), dict(l=0.2, k3=400.0, k3s=-150.0),
        lambda: xt.Octupole(length=0.2, k3=400.0, k3s=-150.0),
    ),
    Case(
        "oct-exact-uniform2", Octupole(exact_drift=True), DriftKick(order=2, slices=2),
        dict(l=0.2, k3=400.0, k3s=-150.0),
        lambda: xt.Octupole(length=0.2, k3=400.0, k3s=-150.0, model="drift-kick-drift-exact",
                            integrator="uniform", num_multipole_kicks=2),
    ),
    # Thin multipole: the MAD-X importer sets hxl = knl[0] (dipole bends the reference).
    Case(
        "multipole-default", Multipole(), DriftKick(), dict(knl=KNL, ksl=KSL),
        lambda: xt.Multipole(knl=KNL, ksl=KSL, hxl=KNL[0]),
    ),
    # MAD-X ANGLE (or a pinned bend with a dipole field error): hxl = angle != knl[0].
    Case(
        "multipole-angle", Multipole(angle=2.5e-3), DriftKick(), dict(knl=KNL, ksl=KSL),
        lambda: xt.Multipole(knl=KNL, ksl=KSL, hxl=2.5e-3),
    ),
    Case(
        "multipole-straight-reference", Multipole(angle=0.0), DriftKick(), dict(knl=KNL, ksl=KSL),
        lambda: xt.Multipole(knl=KNL, ksl=KSL, hxl=0.0),
    ),
    Case(
        "multipole-plain-dipole", Multipole(bend_reference=False), DriftKick(),
        dict(knl=KNL, ksl=[-0.8e-3] + KSL[1:]), lambda: xt.Multipole(knl=KNL, ksl=[-0.8e-3] + KSL[1:]),
    ),
    # Correctors: importer makes Multipole(knl=[-hkick], ksl=[vkick], length=l, isthick=l>0).
    Case(
        "kicker-thick", Kicker(), DriftKick(), dict(l=0.15, xangle=1.1e-3, yangle=-0.7e-3),
        lambda: xt.Multipole(knl=[-1.1e-3], ksl=[-0.7e-3], length=0.15, isthick=True),
    ),
    Case(
        "kicker-thin", Kicker(), DriftKick(), dict(l=0.0, xangle=1.1e-3, yangle=-0.7e-3),
        lambda: xt.Multipole(knl=[-1.1e-3], ksl=[-0.7e-3]),
    ),
    # Solenoid: UniformSolenoid (sol-kick-sol with empty kick: one exact body flow).
    Case("solenoid", Solenoid(), Flow(), dict(l=0.7, ks=1.3), lambda: xt.UniformSolenoid(length=0.7, ks=1.3)),
    Case("solenoid-off", Solenoid(), Flow(), dict(l=0.7, ks=0.0), lambda: xt.UniformSolenoid(length=0.7, ks=0.0)),
    # RF cavity: default drift-kick-drift-expanded, uniform, 1 kick; lag in degrees in xtrack.
    Case("rf-thick", RFCavity(), DriftKick(), RF, lambda: xt.Cavity(length=0.4, voltage=2e4, frequency=30e6, lag=36.0)),
    Case(
        "rf-thin", RFCavity(), DriftKick(), dict(RF, l=0.0),
        lambda: xt.Cavity(voltage=2e4, frequency=30e6, lag=36.0),
    ),
    Case(
        "rf-thick-exact", RFCavity(exact_drift=True), DriftKick(), RF,
        lambda: xt.Cavity(length=0.4, voltage=2e4, frequency=30e6, lag=36.0, model="drift-kick-drift-exact"),
    ),
    Case("nllens", NonlinearLens(), DriftKick(), NLL, lambda: xt.NonLinearLens(**NLL)),
    # Misalignments: xtrack shift_x, shift_y, rot_s_rad on the same element.
    Case(
        "misaligned-quad", Misaligned(ChromaticQuadrupole()), DriftKick(), dict(QUAD_SKEW, **MIS),
        lambda: xt.Quadrupole(length=0.3, k1=-3.1, k1s=1.2, shift_x=1.2e-3, shift_y=-0.8e-3, rot_s_rad=0.25),
    ),
    Case(
        "misaligned-sext", Misaligned(Sextupole()), DriftKick(), dict(l=0.2, k2=35.0, k2s=-12.0, **MIS),
        lambda: xt.Sextupole(length=0.2, k2=35.0, k2s=-12.0, shift_x=1.2e-3, shift_y=-0.8e-3, rot_s_rad=0.25),
    ),
    Case(
        "misaligned-multipole", Misaligned(Multipole()), DriftKick(), dict(knl=KNL, ksl=KSL, **MIS),
        lambda: xt.Multipole(knl=KNL, ksl=KSL, hxl=KNL[0], shift_x=1.2e-3, shift_y=-0.8e-3, rot_s_rad=0.25),
    ),
    Case(
        "misaligned-kicker", Misaligned(Kicker()), DriftKick(), dict(l=0.15, xangle=1.1e-3, yangle=-0.7e-3, **MIS),
        lambda: xt.Multipole(knl=[-1.1e-3], ksl=[-0.7e-3], length=0.15, isthick=True, shift_x=1.2e-3,
                             shift_y=-0.8e-3, rot_s_rad=0.25),
    ),
    Case(
        "misaligned-solenoid", Misaligned(Solenoid()), Flow(), dict(l=0.7, ks=1.3, **MIS),
        lambda: xt.UniformSolenoid(length=0.7, ks=1.3, shift_x=1.2e-3, shift_y=-0.8e-3, rot_s_rad=0.25),
    ),
    Case(
        "misaligned-rf", Misaligned(RFCavity()), DriftKick(), dict(RF, **MIS),
        lambda: xt.Cavity(length=0.4, voltage=2e4, frequency=30e6, lag=36.0, shift_x=1.2e-3,
                          shift_y=-0.8e-3, rot_s_rad=0.25),
    ),
    Case(
        "misaligned-nllens", Misaligned(NonlinearLens()), DriftKick(), dict(NLL, **MIS),
        lambda: xt.NonLinearLens(**NLL, shift_x=1.2e-3, shift_y=-0.8e-3, rot_s_rad=0.25),
    ),
]
CASE_IDS = [c.name for c in CASES]


def batch_map(case: Case, ref: Reference):
    """Jitted, vmapped one-pass map ``(params, x[n, 6]) -> x[n, 6]``."""
    return jax.jit(jax.vmap(lambda p, x: case.method(case.phys, p, x, ref), in_axes=(None, 0)))


@pytest.mark.parametrize("species", SPECIES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_one_pass_matches_xtrack(case, species):
    ref = reference(species)
    x0 = particles()
    ours = np.asarray(batch_map(case, ref)(case.jparams(), jnp.asarray(x0)))
    theirs, state = xsuite_track(xt.Line(elements=[case.xtrack()]), x0, mass0=ref.mass0, q0=ref.charge, p0c=ref.p0c)
    assert np.all(state == 1)
    assert np.all(np.isfinite(ours))
    err = np.max(np.abs(ours - theirs))
    assert err < TOL_XSUITE, f"{case.name} ({species}): max |JACC - xtrack| = {err:.2e}"


# Elements whose default map is linear to first order exactly like matrix() (no split error
# at first order: k1s = 0, integrable bodies, thin elements, RF at the zero crossing).
FIRST_ORDER = [
    ("drift-exact", Drift(exact=True), Flow(), dict(l=1.3)),
    ("quad-default", ChromaticQuadrupole(), DriftKick(), QUAD),
    ("sext-default", Sextupole(), DriftKick(), dict(l=0.2, k2=35.0, k2s=-12.0)),
    ("multipole-default", Multipole(), DriftKick(), dict(knl=KNL, ksl=KSL)),
    ("kicker-thick-off", Kicker(), DriftKick(), dict(l=0.15, xangle=0.0, yangle=0.0)),
    ("solenoid", Solenoid(), Flow(), dict(l=0.7, ks=1.3)),
    ("rf-zero-crossing", RFCavity(), DriftKick(), dict(RF, lag=0.5)),
    ("nllens", NonlinearLens(), DriftKick(), NLL),
]


@pytest.mark.parametrize("species", SPECIES)
@pytest.mark.parametrize("name,phys,method,params", FIRST_ORDER, ids=[c[0] for c in FIRST_ORDER])
def test_jacobian_at_reference_equals_matrix(name, phys, method, params, species):
    ref = reference(species)
    p = {k: jnp.asarray(v, dtype=float) for k, v in params.items()}
    jac = np.asarray(jax.jacfwd(lambda x: method(phys, p, x, ref))(jnp.zeros(6)))
    # Rounding of ~100-sized entries (R56 for protons).
    assert np.max(np.abs(jac - np.asarray(phys.matrix(p, ref)))) < 1e-13


@pytest.mark.parametrize("species", SPECIES)
def test_split_quadrupole_converges_to_matrix(species):
    """Yoshida-4 with many slices approaches the exact coupled (k1, k1s) linear map."""
    ref = reference(species)
    phys, p = Quadrupole(), {k: jnp.asarray(v) for k, v in QUAD_SKEW.items()}
    jac = np.asarray(jax.jacfwd(lambda x: DriftKick(order=4, slices=32)(phys, p, x, ref))(jnp.zeros(6)))
    # Fourth-order split error ~ (sqrt|K| L / slices)^4 ~ 1e-9 at 32 slices.
    assert np.max(np.abs(jac - np.asarray(phys.matrix(p, ref)))) < 1e-8


def test_linear_applies_offset_of_correctors():
    ref = reference("electron")
    p = {"l": jnp.asarray(0.2), "xangle": jnp.asarray(1e-3), "yangle": jnp.asarray(-2e-3)}
    out = Linear()(Kicker(), p, jnp.zeros(6), ref)
    np.testing.assert_allclose(np.asarray(out), [1e-4, 1e-3, -2e-4, -2e-3, 0.0, 0.0], rtol=0, atol=1e-18)


def test_flow_refuses_elements_with_kicks():
    with pytest.raises(TypeError, match="kick"):
        Flow()(Sextupole(), {"l": 1.0, "k2": 1.0, "k2s": 0.0}, jnp.zeros(6), reference("proton"))


def test_misaligned_declares_fields():
    m = Misaligned(ChromaticQuadrupole())
    assert m.fields == ("l", "k1", "k1s", "dx", "dy", "tilt")
    assert m.thick and m.has_kick
    assert not Misaligned(Solenoid()).has_kick


APERTURES = [
    ("rectangle", lambda x: inside_rectangle(x, 4e-3, 2.5e-3),
     lambda: xt.LimitRect(min_x=-4e-3, max_x=4e-3, min_y=-2.5e-3, max_y=2.5e-3)),
    ("ellipse", lambda x: inside_ellipse(x, 4e-3, 2.5e-3), lambda: xt.LimitEllipse(a=4e-3, b=2.5e-3)),
    ("circle", lambda x: inside_circle(x, 3e-3), lambda: xt.LimitEllipse(a=3e-3, b=3e-3)),
]


@pytest.mark.parametrize("name,inside,limit", APERTURES, ids=[a[0] for a in APERTURES])
def test_aperture_matches_xtrack(name, inside, limit):
    ref = reference("proton")
    x0 = particles(n=400, seed=11) * np.array([2.0, 1.0, 1.5, 1.0, 1.0, 1.0])
    ours = np.asarray(jax.jit(jax.vmap(inside))(jnp.asarray(x0)))
    line = xt.Line(elements=[limit()])
    line.build_tracker()
    parts = xsuite_particles(x0, mass0=ref.mass0, q0=ref.charge, p0c=ref.p0c)
    line.track(parts)
    # xtrack moves lost particles to the end: restore the input order by particle id.
    state = np.asarray(parts.state)[np.argsort(np.asarray(parts.particle_id))]
    assert 0 < ours.sum() < len(ours)  # the batch straddles the boundary
    np.testing.assert_array_equal(ours, state > 0)


def test_aperture_boundary_is_inside_and_nan_is_outside():
    on_edge = jnp.array([4e-3, 0.0, 0.0, 0.0, 0.0, 0.0])
    nan = jnp.array([jnp.nan, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert bool(inside_rectangle(on_edge, 4e-3, 1e-3)) and bool(inside_ellipse(on_edge, 4e-3, 1e-3))
    assert bool(inside_circle(on_edge, 4e-3))
    for fn in (lambda x: inside_rectangle(x, 1.0, 1.0), lambda x: inside_ellipse(x, 1.0, 1.0),
               lambda x: inside_circle(x, 1.0)):
        assert not bool(fn(nan))
