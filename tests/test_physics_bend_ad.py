"""Bends and edges under differentiation: symplecticity, gradients, smooth limits, plumbing.

Models: ``SBend`` + ``Yoshida6`` (Xsuite's default scheme) with linear and full edges,
``ExactSBend``, ``DipoleEdge`` with the linear and the full (dipole-only) edge, for
150 MeV electrons and 2.5 MeV protons.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jacc.physics.base import DriftKick, Linear, Reference, symplectic_form
from jacc.physics.bend import (
    ExactSBend,
    SBend,
    Yoshida6,
    rbend_to_sbend,
    sector_bend_matrix,
    xsuite_num_kicks,
)
from jacc.physics.dipedge import DipoleEdge
from jacc.physics.edge import FullEdge, LinearEdge

ELECTRON_MASS, PROTON_MASS = 0.51099895000e6, 938.27208816e6  # CODATA 2018 [eV]

# Products of maps in float64: |M^T J M - J| is rounding (observed < 1e-13 with entries
# of M up to ~80 for the proton time-of-flight terms).
TOL_SYMPLECTIC = 1e-12
# Richardson-extrapolated central differences, h ~ 1e-3 |v|: truncation ~1e-11, rounding
# ~1e-14 (proton t carries ~1e-12 noise from ~1000 steps, so smaller h would not do).
TOL_FD = 1e-6


def reference(species: str) -> Reference:
    mass, charge, ekin = (
        (PROTON_MASS, 1.0, 2.5e6) if species == "proton" else (ELECTRON_MASS, -1.0, 150e6)
    )
    energy = mass + ekin
    gamma = energy / mass
    beta = np.sqrt(1.0 - 1.0 / gamma**2)
    return Reference(float(beta), float(gamma), float(np.sqrt(energy**2 - mass**2)), mass, charge)


Z0 = jnp.array([2.0e-3, -1.0e-3, 1.5e-3, 0.8e-3, 3.0e-3, 1.0e-3])  # an off-axis particle


def bend_params(**kw):
    p = dict(l=0.4, angle=np.pi / 8, k1=0.0, k2=0.0, e1=0.0, e2=0.0, fint=0.0, fintx=0.0, gap=0.0)
    p.update(kw)
    return {k: jnp.asarray(v, dtype=float) for k, v in p.items()}


COMBINED = dict(k1=-1.2, k2=2.5, e1=0.1, e2=-0.05, fint=0.4, fintx=0.6, gap=0.04)
IOTA = dict(l=0.4305191429, angle=0.5235987756)
EDGE = {k: jnp.asarray(v) for k, v in dict(h=-2.0, e1=0.2, gap=0.03, fint=0.4).items()}

BEND_MODELS = {
    "default": (SBend(edge=LinearEdge()), Yoshida6()),
    "full_edge": (SBend(edge=FullEdge()), Yoshida6()),
    "exact": (ExactSBend(edge=LinearEdge()), Yoshida6()),
}


def bend_map(model, params, ref):
    phys, method = BEND_MODELS[model]
    method = method.resolve(params)
    return lambda p, z: method(phys, p, z, ref)


def assert_symplectic(m):
    j = symplectic_form(6)
    err = np.abs(np.asarray(m.T @ j @ m - j)).max()
    assert err < TOL_SYMPLECTIC, err


@pytest.mark.parametrize(
    "model,species,case",
    [(m, s, "combined") for m in BEND_MODELS for s in ("electron", "proton")]
    + [("default", "electron", "iota")],
)
def test_bend_symplectic(model, species, case):
    p = bend_params(**(IOTA if case == "iota" else COMBINED))
    f = bend_map(model, p, reference(species))
    assert_symplectic(jax.jit(jax.jacfwd(lambda z: f(p, z)))(Z0))


@pytest.mark.parametrize("species", ["electron", "proton"])
@pytest.mark.parametrize("side", ["entry", "exit"])
@pytest.mark.parametrize("edge", [LinearEdge(), FullEdge(multipole=False)], ids=["linear", "full"])
def test_dipedge_symplectic(edge, side, species):
    phys, ref = DipoleEdge(edge=edge, side=side), reference(species)
    assert_symplectic(jax.jacfwd(lambda z: DriftKick()(phys, EDGE, z, ref))(Z0))


def central_difference(f, p, name):
    """Central differences with one Richardson step: truncation O(h^4), h = 1e-3 max(|v|, 0.1)."""

    def d(step):
        return (f(dict(p, **{name: p[name] + step})) - f(dict(p, **{name: p[name] - step}))) / (
            2 * step
        )

    h = 1e-3 * max(abs(float(p[name])), 0.1)
    return (4.0 * d(h / 2) - d(h)) / 3.0


@pytest.mark.parametrize(
    "model,species",
    [("default", "electron"), ("default", "proton"), ("full_edge", "electron"),
     ("exact", "proton")],
)
def test_bend_gradients_match_finite_differences(model, species):
    p = bend_params(**COMBINED)
    f = bend_map(model, p, reference(species))
    out = jax.jit(lambda q: f(q, Z0))
    fwd = jax.jit(jax.jacfwd(out))(p)
    w = jnp.arange(1.0, 7.0)
    rev = jax.jit(jax.grad(lambda q: out(q) @ w))(p)
    for name in ("angle", "k1", "e1", "fint", "k2", "e2", "fintx", "gap", "l"):
        fd = central_difference(out, p, name)
        scale = float(jnp.abs(fwd[name]).max())
        assert scale > 0.0, name
        assert float(jnp.abs(fwd[name] - fd).max()) <= TOL_FD * scale, name
        # Reverse mode through the scan agrees with forward mode.
        assert float(jnp.abs(rev[name] - fwd[name] @ w)) <= 1e-12 * float(jnp.abs(fwd[name]) @ w)


@pytest.mark.parametrize("side", ["entry", "exit"])
@pytest.mark.parametrize("edge", [LinearEdge(), FullEdge(multipole=False)], ids=["linear", "full"])
@pytest.mark.parametrize("name", ["h", "e1", "fint", "gap"])
def test_dipedge_gradients_match_finite_differences(edge, side, name):
    phys, ref = DipoleEdge(edge=edge, side=side), reference("proton")
    out = jax.jit(lambda q: DriftKick()(phys, q, Z0, ref))
    fwd = jax.jacfwd(lambda v: out(dict(EDGE, **{name: v})))(EDGE[name])
    fd = central_difference(out, EDGE, name)
    assert float(jnp.abs(fwd - fd).max()) <= TOL_FD * float(jnp.abs(fwd).max())


LIMITS = {  # k1 = 0, a straight element (with and without field), fint = 0 (full edge: 1/fint)
    "k1=0": dict(IOTA),
    "straight": dict(angle=0.0, k1=1.3),
    "field-free": dict(angle=0.0),
    "fint=0": dict(angle=0.3, k1=0.0, fint=0.0, e1=0.0),
}


@pytest.mark.parametrize("model", list(BEND_MODELS))
def test_gradients_finite_in_limits(model):
    """No NaN in forward or reverse gradients at the special points of the formulas."""
    phys, _ = BEND_MODELS[model]
    method, ref = Yoshida6(kicks=7), reference("electron")  # the kick count is irrelevant here
    ps = [bend_params(**limit) for limit in LIMITS.values()]
    batch = {k: jnp.stack([p[k] for p in ps]) for k in ps[0]}

    def grads(q):
        fwd = jax.jacfwd(lambda r: method(phys, r, Z0, ref))(q)
        rev = jax.grad(lambda r: method(phys, r, Z0, ref).sum())(q)
        return fwd, rev

    fwd, rev = jax.jit(jax.vmap(grads))(batch)
    for name in batch:
        for i, limit in enumerate(LIMITS):
            assert np.all(np.isfinite(np.asarray(fwd[name][i]))), (limit, name)
            assert np.isfinite(float(rev[name][i])), (limit, name)


def test_straight_limit_is_continuous():
    """A bend of tiny angle tracks like the straight one (no 1/h blow-up)."""
    ref = reference("electron")
    for model in BEND_MODELS:
        f = bend_map(model, bend_params(angle=0.0, k1=1.3), ref)
        z0 = f(bend_params(angle=0.0, k1=1.3), Z0)
        z1 = f(bend_params(angle=1e-9, k1=1.3), Z0)
        assert float(jnp.abs(z1 - z0).max()) < 1e-11


@pytest.mark.parametrize("species", ["electron", "proton"])
def test_exact_flow_linearises_to_matrix(species):
    """The exact dipole flow's Jacobian at the origin is sector_bend_matrix (k1 = 0)."""
    ref = reference(species)
    p = bend_params(**IOTA)
    jac = jax.jacfwd(lambda z: DriftKick()(ExactSBend(edge=LinearEdge()), p, z, ref))(jnp.zeros(6))
    lin = jax.jacfwd(lambda z: Linear()(SBend(), p, z, ref))(jnp.zeros(6))
    np.testing.assert_allclose(np.asarray(jac), np.asarray(lin), rtol=0, atol=1e-12)


def test_default_scheme_linearises_close_to_matrix():
    """Xsuite's split (kicks for k1) is within its integration error of the exact matrix."""
    ref = reference("electron")
    p = bend_params(**COMBINED)
    f = bend_map("default", p, ref)
    jac = jax.jacfwd(lambda z: f(p, z))(jnp.zeros(6))
    lin = jax.jacfwd(lambda z: Linear()(SBend(), p, z, ref))(jnp.zeros(6))
    assert float(jnp.abs(jac - lin).max()) < 1e-8


def test_matrix_continuous_across_series_switch():
    """sector_bend_matrix switches to series for |K| l^2 < 0.1: no jump there."""
    length = 0.5
    for sign in (1.0, -1.0):
        mats = [sector_bend_matrix(length, 0.0, sign * k, 0.9, 2.3)
                for k in (0.1 / length**2 * (1 - 1e-9), 0.1 / length**2 * (1 + 1e-9))]
        assert float(jnp.abs(mats[0] - mats[1]).max()) < 1e-9
        g = jax.jacfwd(lambda k: sector_bend_matrix(length, 0.2, k, 0.9, 2.3))(0.0)
        assert np.all(np.isfinite(np.asarray(g)))


def test_rbend_to_sbend():
    l_arc, e1, e2 = rbend_to_sbend(0.4, 0.3, 0.01, -0.02)
    assert float(l_arc) == pytest.approx(0.4 * 0.15 / np.sin(0.15), rel=1e-15)
    assert (float(e1), float(e2)) == pytest.approx((0.16, 0.13), rel=1e-15)
    assert float(rbend_to_sbend(0.4, 0.0, 0.0, 0.0)[0]) == 0.4
    g = jax.grad(lambda a: rbend_to_sbend(0.4, a, 0.0, 0.0)[0])(0.0)
    assert float(g) == 0.0  # l_arc = l (1 + angle^2 / 24 + ...)


def test_kick_count_heuristic():
    # Xsuite: int(|l| |h| / (2 * 3.14159) / 0.5e-3), at least 1; 1 when straight.
    assert xsuite_num_kicks(0.4305191429, 0.5235987756) == int(0.5235987756 / 0.00314159)
    assert xsuite_num_kicks(0.4, 1e-6) == 1
    assert xsuite_num_kicks(0.4, 0.0) == 1
    assert Yoshida6(kicks=166).slices == 24 and Yoshida6(kicks=7).slices == 1


def test_unresolved_kick_count_under_jit_is_a_clear_error():
    p = bend_params(**IOTA)
    ref = reference("electron")
    f = jax.jit(lambda q: Yoshida6()(SBend(), q, Z0, ref))
    with pytest.raises(ValueError, match="resolve"):
        f(p)
    # Concrete parameters resolve on the fly.
    eager = Yoshida6()(SBend(), p, Z0, ref)
    np.testing.assert_array_equal(eager, Yoshida6().resolve(p)(SBend(), p, Z0, ref))


def test_bad_options_raise():
    with pytest.raises(ValueError, match="kicks"):
        Yoshida6(kicks=0)
    with pytest.raises(ValueError, match="side"):
        DipoleEdge(side="middle")
