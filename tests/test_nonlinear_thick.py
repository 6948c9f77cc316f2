"""The thick DN insert (`NonlinearInsertField`, diffrax) as a lattice element: against
`thick_insert_pass`, the thin slicing, symplecticity, gradients and the description's I/O."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc.lattice import LatticeError
from jacc.lattice.elements import Drift, Marker, NonlinearInsertField
from jacc.lattices import NonlinearInsert, with_nonlinear_insert
from jacc.nonlinear.thick import thick_insert_pass
from jacc.physics.nlinsert import insert_flow

L = 1.8
T, C, MU0 = 0.4, 0.01, 0.3


@pytest.fixture(scope="module")
def rp():
    return jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)


@pytest.fixture(scope="module")
def x0():
    """Three particles a few mm off axis at the entrance, converging as the insert's optics
    (alpha > 0 there), two of them off momentum."""
    bc = NonlinearInsert(mu0=MU0).beta_centre(L)
    beta_in, alfa_in = bc + (L / 2) ** 2 / bc, L / 2 / bc
    x = np.zeros((3, 6))
    x[:, 0], x[:, 2] = [3e-3, 5e-3, 1e-3], [2e-3, 1e-3, 6e-3]
    x[:, 1], x[:, 3] = -alfa_in * x[:, 0] / beta_in, -alfa_in * x[:, 2] / beta_in
    x[:, 5] = [0.0, 1e-3, -2e-3]
    return x


def _bare():
    return jacc.Lattice.from_elements([Marker(name="nlr1"), Drift(name="dnl", l=L), Marker(name="nlr2")],
                                      name="ins")


def _thick(n_steps: int, **fields):
    el = NonlinearInsertField.from_mu0("nlf", L, MU0, t=T, c=C, n_steps=n_steps, **fields)
    return jacc.Lattice.from_elements([el], name="thick")


def _pass(lat, rp, x):
    return np.asarray(jacc.track(lat, rp, x, 1, record=None).x)


@pytest.fixture(scope="module")
def thick_reference(rp, x0):
    """One pass through the thick element in 512 steps: its own error is about (4 / 512)^2
    times the 4-step error, 5e-7 of the kick."""
    return _pass(_thick(512), rp, x0)


def test_element_equals_thick_insert_pass(rp, x0, thick_reference):
    # the same physics (`jacc.physics.nlinsert`) in both: equal to rounding, all six columns
    ref = np.asarray(thick_insert_pass(x0, NonlinearInsert(t=T, c=C, mu0=MU0), L, 512, rp=rp))
    np.testing.assert_allclose(thick_reference, ref, rtol=0, atol=1e-14)


def test_thin_slices_converge_to_thick_element(rp, x0, thick_reference):
    """4, 8, 16, 32 thin slices (tracked by `jacc.track`) against the thick element: largest
    difference in x, px, y, py over the largest kick in px, py (on and off momentum):
    1.37e-2, 2.96e-3, 7.3e-4, 1.8e-4, bounded by 1.6e-2 / (n / 4)^2 and shrinking about 4x
    per doubling (leapfrog: second order in L / n)."""
    kick = np.abs(thick_reference - _pass(_bare(), rp, x0))[:, [1, 3]].max()
    ns = np.array([4, 8, 16, 32])
    errs = np.array([np.abs(_pass(with_nonlinear_insert(_bare(), NonlinearInsert(t=T, c=C, n_slices=n)), rp, x0)
                            - thick_reference)[:, :4].max() / kick for n in ns])
    assert np.all(errs < 1.6e-2 / (ns / 4) ** 2), errs
    assert np.all(errs[:-1] / errs[1:] > 3.5), errs


def test_thick_steps_kick_where_thin_slices_sit(rp, x0):
    # n leapfrog steps kick at the centres of n equal pieces, where n thin slices sit: the
    # same map (drifts included, t and pt too) up to rounding
    thin = _pass(with_nonlinear_insert(_bare(), NonlinearInsert(t=T, c=C, n_slices=8)), rp, x0)
    np.testing.assert_allclose(_pass(_thick(8), rp, x0), thin, rtol=0, atol=1e-14)


def test_thick_segments_between_markers(rp, x0):
    """``thick=True`` keeps the markers (and their apertures) with a segment between each
    pair; 2 steps per segment equal 6 thin slices."""
    ap = jacc.Aperture(shape="ellipse", a=0.01, b=0.01)
    lat = jacc.Lattice.from_elements(
        [Marker(name="nlr1"), Drift(name="d1", l=0.6), Marker(name="mn01", aperture=ap), Drift(name="d2", l=0.6),
         Marker(name="ior"), Drift(name="d3", l=0.6), Marker(name="nlr2")], name="ins")
    thick = with_nonlinear_insert(lat, NonlinearInsert(t=T, c=C, n_slices=6, thick=True))
    assert [p.name for p in thick.elements] == ["nlr1", "nll_01", "mn01", "nll_02", "ior", "nll_03", "nlr2"]
    segs = [thick[f"nll_{k:02d}"] for k in (1, 2, 3)]
    assert [s.n_steps for s in segs] == [2, 2, 2]
    np.testing.assert_allclose([s.s_c for s in segs], [0.9, 0.3, -0.3], atol=1e-15)
    assert thick["mn01"].aperture == ap
    thin = with_nonlinear_insert(lat, NonlinearInsert(t=T, c=C, n_slices=6))
    np.testing.assert_allclose(_pass(thick, rp, x0), _pass(thin, rp, x0), rtol=0, atol=1e-14)


@pytest.fixture(scope="module")
def one_pass(rp):
    """``f(dynamic, x)``: the one-pass map of the 16-step element with ``t`` flagged."""
    lat = _thick(16, diff_params=["t"])
    engine = jacc.TrackingEngine(lat, rp)
    spec, _, dynamic = engine.make_model()
    f = engine.make_tracking_func(spec)
    return jax.jit(lambda d, x: f(d, x[None, :], n_turns=1).x[0]), dynamic


def test_one_pass_map_is_symplectic(one_pass, x0):
    f, dynamic = one_pass
    j2 = jnp.array([[0.0, 1.0], [-1.0, 0.0]])
    s = jnp.kron(jnp.eye(3), j2)
    for x in x0:
        m = jax.jacfwd(lambda v: f(dynamic, v))(jnp.asarray(x))
        # leapfrog is symplectic: rounding only (measured ~1e-15)
        assert float(jnp.abs(m.T @ s @ m - s).max()) < 1e-10


def test_gradient_in_t_against_central_differences(one_pass, x0):
    f, dynamic = one_pass
    (key,) = [k for k in dynamic if "t" in str(k)]
    x = jnp.asarray(x0[1])

    def loss(d):
        y = f(d, x)
        return y[1] ** 2 + 3.0 * y[3] + y[0] * y[2]

    g = jax.grad(loss)(dynamic)[key]
    h = 1e-5
    up, dn = dict(dynamic), dict(dynamic)
    up[key], dn[key] = dynamic[key] + h, dynamic[key] - h
    fd = (loss(up) - loss(dn)) / (2 * h)
    # central differences: truncation ~h^2 |f'''| and rounding ~1e-16 / h; measured agreement
    # 7e-11 relative (6e-9 with h = 1e-4, 2e-12 with h = 1e-6)
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-8)


def test_backwards_integration_inverts_the_pass(rp, x0):
    # leapfrog is symmetric: run backwards it is the inverse map (reverse mode re-tracks
    # through it), to rounding (measured 2e-17)
    el = NonlinearInsertField.from_mu0("nlf", L, MU0, t=T, c=C)
    p = {f: getattr(el, f) for f in ("l", "t", "c", "beta_c", "s_c")}
    run = jax.jit(jax.vmap(lambda v: insert_flow(insert_flow(v, p, 16, rp.beta0), p, 16, rp.beta0,
                                                 backwards=True)))
    np.testing.assert_allclose(np.asarray(run(jnp.asarray(x0))), x0, rtol=0, atol=1e-15)


def test_description_round_trip_and_exports():
    el = NonlinearInsertField.from_mu0("nlf", L, MU0, t=T, c=C, n_steps=16, diff_params=["t"])
    assert el.s_c == 0.9 and abs(el.beta_c - NonlinearInsert(mu0=MU0).beta_centre(L)) < 1e-15
    assert abs(el.mu0 - MU0) < 1e-15
    lat = jacc.Lattice.from_elements([Marker(name="m"), el, Drift(name="d", l=0.5)], name="ins")
    assert jacc.Lattice.from_json(lat.to_json()) == lat
    with pytest.warns(Warning):
        doc = lat.to_pals()
    assert jacc.Lattice.from_pals(doc) == lat
    for write in (lat.to_madx, lat.to_bmad, lat.to_elegant):
        with pytest.raises(LatticeError, match="NonlinearInsertField 'nlf'"):
            write()


def test_bridges_refuse_the_thick_insert(rp):
    lat = _thick(4)
    from jacc.bridges import ImpactXExporter, XsuiteExporter

    with pytest.raises(NotImplementedError, match="NonlinearInsertField 'nlf'.*Xsuite"):
        XsuiteExporter().write_lattice(lat, rp)
    pytest.importorskip("impactx")
    with pytest.raises(NotImplementedError, match="NonlinearInsertField 'nlf'.*ImpactX"):
        ImpactXExporter().write_lattice(lat, rp)


def test_bad_input_names_the_element():
    with pytest.raises(ValueError, match="NonlinearInsertField 'bad'.*beta_c"):
        NonlinearInsertField(name="bad", l=1.0, beta_c=-1.0)
    with pytest.raises(ValueError, match="NonlinearInsertField 'bad'.*mu0"):
        NonlinearInsertField.from_mu0("bad", 1.0, 0.7)
    with pytest.raises(ValueError, match="NonlinearInsertField 'bad'.*n_steps"):
        NonlinearInsertField(name="bad", l=1.0, n_steps=0)


@pytest.mark.slow
def test_iota_with_the_thick_insert():
    """IOTA with 18 thick segments of 2 steps equals IOTA with 36 thin slices: three turns
    (1e-13: rounding over ~400 elements a turn) and the tunes by the optics (forward mode
    through diffrax; 1e-10). About 60 s, mostly compiling the optics through diffrax."""
    x0 = np.zeros((2, 6))
    x0[:, 0], x0[:, 2], x0[:, 5] = [1e-3, 2e-3], [1e-3, 0.5e-3], [0.0, 1e-3]
    out = []
    for thick in (False, True):
        lat, rp = jacc.lattices.iota(species="proton",
                                     nonlinear_insert=NonlinearInsert(t=0.3, c=C, n_slices=36, thick=thick))
        tw = jacc.twiss(lat, rp, method="4d")
        out.append((np.asarray(jacc.track(lat, rp, x0, 3).x), tw.qx, tw.qy))
    assert sum(e.element_name == "NonlinearInsertField" for e in lat.elements) == 18
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(out[1][1:], out[0][1:], rtol=0, atol=1e-10)
