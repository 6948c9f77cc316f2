"""The entry points' cache of compiled lines and programs (`jacc.engine.cache`).

`jacc.twiss` and `jacc.track` compile a lattice once per structure and re-read its numbers
on every call. The worst failure would be a stale cache: old optics after a change. So
every kind of change is made here and the cached line is compared with a fresh
`compile_lattice` (tables bit for bit, signatures, dynamic parameters), and the optics and
tracking with programs compiled independently from the fresh line (to 1e-14).

The references feed freshly compiled tables to the program compiled for the same line
structure (programs take the table as an argument), and the tunes are checked against a
separately compiled one-turn map. A 4-cell ring keeps compilation short: one optics
program, three tracking programs and one line pass in all.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc.engine import cache
from jacc.engine import engine as engine_module
from jacc.engine.compiler import compile_lattice
from jacc.engine.tracker import make_line_states
from jacc.optics import TwissOptions, trace_count, twiss_func

N_CELLS = 4
NO_CHROM = TwissOptions(chrom=False)  # half the program: enough to see every column move


def ring():
    """4 FODO cells with bends, sextupoles, BPMs, a thin corrector and a multipole; knobs
    drive both quadrupole families, one through a mixed expression."""
    qf = jacc.Quadrupole(name="qf", l=0.4, k1=0.9)
    qd = jacc.Quadrupole(name="qd", l=0.4, k1=-0.85)
    b = jacc.SBend(name="b", l=1.2, angle=2 * np.pi / (2 * N_CELLS))
    sf = jacc.Sextupole(name="sf", l=0.1, k2=1.5)
    d = jacc.Drift(name="d", l=0.35)
    bpm = jacc.Monitor(name="bpm")
    hv = jacc.HVCorrector(name="hv")
    mp = jacc.Multipole(name="mp", knl=[0.0, 0.0, 0.1])
    cell = jacc.Line("cell", [qf, d, sf, d, b, d, bpm, hv, qd, d, mp, d, b, d])
    return jacc.Lattice.from_line(jacc.Line("ring", [cell], repeat=N_CELLS),
                                  knobs={"kqf": 0.9, "kqd": -0.85, "trim": 0.0},
                                  expressions={"qf": {"k1": "kqf"}, "qd": {"k1": "kqd + trim"}})


@pytest.fixture(scope="module")
def rp():
    return jacc.ReferenceParticle.from_kinetic_energy("electron", 150e6)


def fresh(lat, rp, specialise):
    return compile_lattice(lat, rp.reference(), jacc.Xsuite(), specialise=specialise)


def assert_same_line(lat, rp):
    """The cached line of ``lat`` is what a fresh compilation gives, for both entry points."""
    tokens = []
    for specialise in (False, True):
        line = cache.compiled_line(lat, rp.reference(), cache.default_preset(), specialise=specialise)
        a, b = line.spec, fresh(lat, rp, specialise)
        assert np.array_equal(a.table, b.table)  # bit for bit
        assert a.signature == b.signature
        assert a.dynamic_init == b.dynamic_init and a.setters == b.setters
        assert np.array_equal(a.s_end, b.s_end) and a.length == b.length
        assert line.token == cache.signature_token(b)
        tokens.append(line.token)
    return tokens


def _set(lat, path, value):
    obj = lat[path[0]]
    setattr(obj, path[1], value)


# (description, change, whether the program structure may change)
CHANGES = [
    ("knob", lambda lat: lat.set_knob("kqf", 0.95), False),
    ("knob in a mixed expression", lambda lat: lat.set_knob("trim", 0.01), False),
    ("definition field", lambda lat: _set(lat, ("sf", "k2"), 2.0), False),
    ("one placement's field", lambda lat: _set(lat, ("qd:2", "k1"), -0.7), False),
    ("that placement again", lambda lat: _set(lat, ("qd:2", "k1"), -0.75), False),
    ("corrector kick", lambda lat: _set(lat, ("hv", "xangle"), 1e-4), False),
    ("list field in place", lambda lat: lat["mp"].knl.__setitem__(2, 0.3), False),
    ("list field grown in place", lambda lat: lat["mp"].knl.append(0.05), True),
    ("flag a definition field", lambda lat: _set(lat, ("qd", "diff_params"), ["k1"]), False),
    ("flagged value", lambda lat: _set(lat, ("qd", "k1"), -0.8), False),
    ("flag in place", lambda lat: lat["sf"].diff_params.append("k2"), False),
    ("flag one placement", lambda lat: _set(lat, ("b:3", "diff_params"), ["k1"]), True),
    ("flag a knob", lambda lat: setattr(lat.knobs["kqf"], "diff", True), False),
    ("differentiable knob value", lambda lat: lat.set_knob("kqf", 0.93), False),
    ("misalign", lambda lat: _set(lat, ("sf", "dx"), 1e-4), True),
    ("misalign more", lambda lat: _set(lat, ("sf", "dx"), 2e-4), False),
    ("skew gradient on", lambda lat: _set(lat, ("qf", "k1s"), 0.01), True),
    ("skew gradient changed", lambda lat: _set(lat, ("qf", "k1s"), 0.02), False),
    ("skew gradient off", lambda lat: _set(lat, ("qf", "k1s"), 0.0), True),
    ("bend gradient", lambda lat: _set(lat, ("b", "k1"), 0.05), True),
    ("aperture", lambda lat: _set(lat, ("d", "aperture"), jacc.lattice.Aperture(shape="circle", a=0.03)),
     True),
    ("aperture size", lambda lat: _set(lat, ("d", "aperture"),
                                       jacc.lattice.Aperture(shape="circle", a=0.02)), False),
    ("length", lambda lat: _set(lat, ("d", "l"), 0.36), True),
    ("definition replaced", lambda lat: lat.definitions.__setitem__(
        "sf", jacc.Sextupole(name="sf", l=0.1, k2=1.0, dx=2e-4, diff_params=["k2"])), False),
    ("element added", lambda lat: lat.line.append("bpm"), True),
]


def test_cached_line_follows_every_change(rp):
    lat = ring()
    tokens = assert_same_line(lat, rp)
    for what, change, structural in CHANGES:
        change(lat)
        new = assert_same_line(lat, rp)
        if not structural:
            assert new == tokens, f"{what}: a change of values gave a new program"
        tokens = new


def test_value_index_names_every_number():
    lat = ring()
    lat["qd:2"].k1 = -0.7
    lat["d"].aperture = jacc.lattice.Aperture(shape="ellipse", a=0.03, b=0.02)
    values, index = lat.numeric_values(), lat.value_index()
    assert len(values) == sum(n for _, n in index.values())
    for key, (o, n) in index.items():
        if key[0] == "def":
            el = lat.definitions[key[1]]
            want = (el.aperture.a, el.aperture.b) if key[2] == "aperture" else getattr(el, key[2])
        elif key[0] == "pl":
            want = lat.overrides[key[1]][key[2]]
        elif key[0] == "knob":
            want = lat.knobs[key[1]].value
        else:
            want = lat.s0
        assert np.array_equal(values[o:o + n], np.atleast_1d(want)), key


def test_structure_key_is_cheap_and_ignores_values():
    lat = ring()
    key = lat.structure_key()
    lat.set_knob("kqf", 1.0)
    lat["sf"].k2 = 0.5
    assert lat.structure_key() == key
    lat["sf"].diff_params = ["k2"]
    assert lat.structure_key() != key
    big, _ = jacc.lattices.iota()
    big.structure_key()
    t = []
    for _ in range(20):
        t0 = time.perf_counter()
        big.snapshot()
        t.append(time.perf_counter() - t0)
    # IOTA (383 placements, 174 definitions): a fraction of a millisecond, against ~70 ms
    # for a compilation; 5 ms leaves room for a loaded machine
    assert np.median(t) < 5e-3


@pytest.fixture(scope="module")
def reference_optics(rp):
    """Optics of a freshly compiled line: its table through the optics program of the same
    structure (the program takes the table as an argument), and, independently of that
    program, the tunes from the one-turn matrix of a separately compiled line pass."""
    lat = ring()
    spec = fresh(lat, rp, False)
    one_pass = jax.jit(make_line_states(spec))

    def optics(lat):
        spec = fresh(lat, rp, False)
        program = twiss_func._compiled(spec, cache.signature_token(spec), "4d", True, NO_CHROM, lat.name)
        tw = program(spec.table, np.float64(0.0), twiss_func.init_vector(None))[0]
        # eigen-tunes of the 4D one-turn matrix about the closed orbit
        v0 = jnp.asarray([float(getattr(tw, c)[0]) for c in ("x", "px", "y", "py")] + [0.0, 0.0])
        m = np.asarray(jax.jacfwd(lambda v: one_pass(spec.table, v)[0])(v0))[:4, :4]
        mu = np.angle(np.linalg.eigvals(m)) / (2 * np.pi)
        tunes = np.sort(mu[mu > 0])
        return tw, tunes

    return optics


COLUMNS = ("betx", "bety", "alfx", "alfy", "mux", "muy", "dx", "dpx", "x", "px", "y", "py")


def assert_same_optics(tw, reference):
    ref, tunes = reference
    for c in COLUMNS:
        a, b = np.asarray(getattr(tw, c)), np.asarray(getattr(ref, c))
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14 * max(1.0, np.abs(b).max()), err_msg=c)
    for c in ("qx", "qy"):
        assert abs(float(getattr(tw, c)) - float(getattr(ref, c))) <= 1e-14, c
    # fractional tunes from the eigenvalues (which cannot tell q from 1 - q): another
    # program, rounding only
    fracs = [float(q) % 1.0 for q in (tw.qx, tw.qy)]
    np.testing.assert_allclose(np.sort([min(f, 1.0 - f) for f in fracs]), tunes, rtol=0, atol=1e-10)


def test_twiss_sees_every_change_without_recompiling(rp, reference_optics):
    lat = ring()
    n = trace_count()
    tw = jacc.twiss(lat, rp, options=NO_CHROM)
    assert trace_count() <= n + 1
    assert_same_optics(tw, reference_optics(lat))
    n = trace_count()
    steps = [
        lambda: lat.set_knob("kqf", 0.95),
        lambda: setattr(lat["qd"], "k1", -0.8),  # a definition (overrides the knob's value)
        lambda: setattr(lat["qf:3"], "k1", 0.85),  # one placement
        lambda: setattr(lat["qf:3"], "k1", 0.87),  # the same placement again
        lambda: lat.set_knob("trim", -0.02),  # a knob in a mixed expression
        lambda: setattr(lat["sf"], "diff_params", ["k2"]),  # a flag: the table is the same
        lambda: lat["qd"].diff_params.append("k1"),  # a flag set in place
        lambda: setattr(lat["hv"], "yangle", 2e-5),  # an orbit
    ]
    before = float(tw.qx)
    for step in steps:
        step()
        tw = jacc.twiss(lat, rp, options=NO_CHROM)
        assert_same_optics(tw, reference_optics(lat))
    assert abs(float(tw.qx) - before) > 1e-3 and np.abs(np.asarray(tw.y)).max() > 1e-7
    assert trace_count() == n
    lat2 = ring()  # another lattice object of the first structure: its program again
    lat2.set_knob("kqf", 0.95)
    assert_same_optics(jacc.twiss(lat2, rp, options=NO_CHROM), reference_optics(lat2))
    assert trace_count() == n


def test_twiss_layout_follows_signs(rp):
    lat = ring()
    lay = jacc.twiss(lat, rp, options=NO_CHROM).layout
    assert lay == twiss_func.layout(fresh(lat, rp, False))
    lat.set_knob("kqf", 0.95)
    assert jacc.twiss(lat, rp, options=NO_CHROM).layout is lay  # same signs: same tuple
    lat.set_knob("kqd", 0.1)  # a focusing "qd" is drawn as one
    lay2 = jacc.twiss(lat, rp, options=NO_CHROM, return_status=True)[0].layout
    assert lay2 == twiss_func.layout(fresh(lat, rp, False)) and lay2 != lay


def test_element_added_gives_a_new_program(rp):
    lat = ring()
    token = cache.compiled_line(lat, rp.reference(), cache.default_preset(), specialise=False).token
    lat.line.insert(3, "bpm")
    line = cache.compiled_line(lat, rp.reference(), cache.default_preset(), specialise=False)
    assert line.token != token and len(line.spec.names) == len(lat.line)
    # end to end with tracking (quick to compile): the added element is tracked through
    lat.line.insert(5, "hv")
    lat["hv:1"].xangle = 1e-3
    x0 = np.zeros((4, 6))
    res, ref = jacc.track(lat, rp, x0, n_turns=3), reference_track(lat, rp, x0)
    assert np.abs(np.asarray(res.x)).max() > 1e-4
    np.testing.assert_allclose(np.asarray(res.x), np.asarray(ref.x), rtol=0, atol=1e-14)


def reference_track(lat, rp, x0):
    """Three turns through a freshly compiled line, by the tracking program `jacc.track`
    compiled for that line's structure (it takes the table as an argument)."""
    spec = fresh(lat, rp, True)
    program = engine_module._PROGRAMS[(cache.signature_token(spec), rp.reference(), "centroid", None)]
    return program(spec.table, jnp.asarray(x0), np.ones(len(x0), bool), 3)


def test_track_sees_values_and_specialisation_changes(rp):
    lat = ring()
    x0 = np.zeros((100, 6))
    x0[:, 0] = np.linspace(-1e-3, 1e-3, 100)
    x0[:, 2] = 2e-4

    def same():
        res = jacc.track(lat, rp, x0, n_turns=3)
        ref = reference_track(lat, rp, x0)  # the same program, a freshly compiled table
        np.testing.assert_allclose(np.asarray(res.x), np.asarray(ref.x), rtol=0, atol=1e-14)
        np.testing.assert_allclose(np.asarray(res.monitors.centroid), np.asarray(ref.monitors.centroid),
                                   rtol=0, atol=1e-14)
        return np.asarray(res.x)

    x_a = same()
    lat.set_knob("kqf", 0.95)
    lat["sf:2"].k2 = 4.0
    x_b = same()
    assert np.abs(x_b - x_a).max() > 1e-6
    token = cache.compiled_line(lat, rp.reference(), cache.default_preset(), specialise=True).token
    lat["qf"].k1s = 0.02  # no longer the normal quadrupole's exact flow: another kernel
    same()
    assert cache.compiled_line(lat, rp.reference(), cache.default_preset(), specialise=True).token != token
    lat["qf"].k1s = 0.0  # back: the first program
    same()
    assert cache.compiled_line(lat, rp.reference(), cache.default_preset(), specialise=True).token == token


def test_engine_spec_is_refreshed_per_engine(rp):
    lat = ring()
    lat["qd"].diff_params = ["k1"]
    spec0, _, dyn0 = jacc.TrackingEngine(lat, rp).make_model()
    lat["qd"].k1 = -0.6
    spec1, _, dyn1 = jacc.TrackingEngine(lat, rp).make_model()
    assert float(dyn0["qd.k1"]) == -0.85 and float(dyn1["qd.k1"]) == -0.6
    assert spec0.table is not spec1.table and not np.array_equal(spec0.table, spec1.table)
    with pytest.raises(ValueError):
        spec1.table[0, 0] = 1.0  # shared with the cache: read-only


def test_matcher_takes_new_values_without_a_new_program(rp):
    from jacc.match import Matcher, MatchOptions

    lat = ring()
    m = Matcher(lat, rp, {"qf": "k1"}, {"qx": 1.1}, options=MatchOptions(progress=False))
    other = lat.copy()
    other.set_knob("kqd", -0.8)
    other["sf"].k2 = 1.0
    assert m.rebind(other)
    flagged = other.copy()
    flagged["qf"].diff_params = ["k1"]
    spec = fresh(flagged, rp, True)
    assert np.array_equal(m.table, spec.table) and m.lattice is other
    assert all(float(m.dynamic[k]) == v for k, v in spec.dynamic_init.items())
    grown = other.copy()
    grown.line.append("d")
    assert not m.rebind(grown)
