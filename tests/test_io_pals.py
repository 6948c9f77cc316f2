"""PALS (pals-schema): exact round trips of every element type, files, Twiss through PALS, errors."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jacc
from jacc.lattice import ELEMENT_TYPES, Aperture, Lattice, LatticeError, PhysicsWarning
from jacc.lattice.io_pals import from_pals, read_pals, to_pals, validate_pals, write_pals

pals = pytest.importorskip("pals")

_F = st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False)
_POS = st.floats(1e-3, 5.0, allow_nan=False, allow_infinity=False)
_ZERO_OR = lambda s: st.one_of(st.just(0.0), s)  # noqa: E731  (plain zeros are common in lattices)


@st.composite
def elements(draw, cls, name):
    kind = cls.model_fields["element_name"].default
    f = {"name": name}
    for field in cls.numeric_fields():
        ann = cls.model_fields[field].annotation
        if ann == list[float]:
            f[field] = draw(st.lists(_ZERO_OR(_F), max_size=4))
        else:
            f[field] = draw(_ZERO_OR(_F))
    f["l"] = 0.0 if cls.thin else draw(_POS)
    for positive in ("gap", "frequency", "lrad", "a", "b", "cnll", "c", "beta_c"):
        if positive in f:
            f[positive] = draw(_POS)
    if kind in ("SBend", "RBend"):
        f["angle"] = draw(st.floats(-3.0, 3.0, allow_nan=False))
        f["fintx"] = draw(st.one_of(st.none(), _F))
    if kind == "HKicker":
        f["yangle"] = 0.0
    if kind == "VKicker":
        f["xangle"] = 0.0
    if kind == "RFCavity":
        f["harmon"] = draw(st.integers(0, 400))
    if kind == "DipoleEdge":
        f["side"] = draw(st.sampled_from(["entry", "exit"]))
    if kind == "FieldMap":
        n = draw(st.integers(0, 4))
        f["z"] = sorted({round(0.1 * i + draw(st.floats(0, 0.05)), 6) for i in range(n)})
        f["bz"] = [draw(_F) for _ in f["z"]]
    if not kind.endswith("Aperture") and draw(st.booleans()):
        shape = draw(st.sampled_from(["rectangle", "ellipse", "circle"]))
        a = draw(_POS)
        f["aperture"] = Aperture(shape=shape, a=a, b=None if shape == "circle" else draw(_POS))
    f["diff_params"] = draw(st.lists(st.sampled_from(cls.numeric_fields()), max_size=2, unique=True))
    if draw(st.booleans()):
        f["extra"] = {"madx": {"note": draw(st.text(max_size=5))}}
    return cls.model_validate(f)


@st.composite
def lattices(draw):
    types = draw(st.lists(st.sampled_from(ELEMENT_TYPES), min_size=1, max_size=5))
    defs = [draw(elements(cls, f"e{i}")) for i, cls in enumerate(types)]
    order = draw(st.lists(st.integers(0, len(defs) - 1), min_size=1, max_size=12))
    lat = Lattice(name="lat", definitions={d.name: d for d in defs},
                  line=[defs[i].name for i in order], s0=draw(_F))
    if draw(st.booleans()):  # a placement with its own misalignment
        lat[f"{lat.line[0]}:1"].dx = draw(_F)
    if draw(st.booleans()):
        lat.knobs = {"kk": jacc.lattice.Knob(value=1.5)}
        lat.expressions = {lat.line[0]: {"dy": "kk * 2"}}
    return lat


def _quiet(func, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PhysicsWarning)
        return func(*args)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lattices())
def test_pals_round_trip_is_exact(lat):
    doc = _quiet(to_pals, lat)
    back = from_pals(doc)
    assert back == lat
    # pals-schema accepts the document (its models ignore the extension)
    assert isinstance(validate_pals(doc), pals.PALSroot)


@pytest.mark.parametrize("cls", ELEMENT_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_every_element_type_round_trips(cls, data):
    el = data.draw(elements(cls, "x"))
    lat = Lattice.from_elements([el, el])
    assert from_pals(_quiet(to_pals, lat)) == lat


def test_pals_kinds_and_values():
    q = jacc.lattice.Quadrupole(name="qf", l=0.5, k1=1.2, k1s=-0.1, tilt=0.2)
    b = jacc.lattice.SBend(name="b", l=2.0, angle=0.4, e1=0.1, fint=0.5, gap=0.04)
    k = jacc.lattice.HKicker(name="hk", xangle=1e-3)
    doc = to_pals(Lattice.from_elements([q, b, k, q], name="ln"))
    fac = {list(item)[0]: list(item.values())[0] for item in doc["PALS"]["facility"]}
    assert fac["qf"]["MagneticMultipoleP"] == {"Kn1": 1.2, "Ks1": -0.1, "tilt1": 0.2}
    assert fac["b"]["BendP"]["g_ref"] == 0.2 and fac["b"]["BendP"]["edge_int1"] == 0.5 * 0.04
    assert fac["hk"]["MagneticMultipoleP"]["Kn0L"] == -1e-3  # MAD-X sign: +hkick kicks to +x
    assert fac["ln"] == {"kind": "BeamLine", "line": ["qf", "b", "hk", "qf"]}
    assert fac["ln_lattice"]["branches"] == ["ln"]


def test_plain_pals_file_without_extension(tmp_path):
    """A PALS file written by another program (no 'jacc' keys): a FODO with a nested line."""
    path = tmp_path / "fodo.pals.yaml"
    path.write_text("""
PALS:
  facility:
  - d1: {kind: Drift, length: 0.25}
  - qf: {kind: Quadrupole, length: 1.0, MagneticMultipoleP: {Kn1: 1.2}}
  - qd: {kind: Quadrupole, length: 1.0, MagneticMultipoleP: {Kn1L: -1.2}}
  - bend: {kind: SBend, length: 1.0, BendP: {g_ref: 0.1, e1: 0.05, edge_int1: 0.01}}
  - cell: {kind: BeamLine, line: [d1, qf, d1, bend, d1, qd, d1]}
  - ring: {kind: BeamLine, line: [cell, cell, {m1: {kind: Marker}}]}
""")
    lat = read_pals(path)
    assert len(lat) == 15 and lat.name == "ring"
    assert lat["qd"].k1 == -1.2 and lat["bend"].angle == pytest.approx(0.1)
    assert lat["bend"].fint * lat["bend"].gap == pytest.approx(0.01)
    assert lat["bend"].fintx == 0.0


def test_repeated_lattice_written_as_cell_line():
    lat, _ = jacc.lattices.fodo_ring()
    doc = _quiet(to_pals, lat)
    lines = [v for item in doc["PALS"]["facility"] for v in item.values() if v["kind"] == "BeamLine"]
    assert from_pals(doc) == lat
    assert len(lines) >= 1


def test_extension_reported_with_a_warning():
    lat, _ = jacc.lattices.iota()
    with pytest.warns(PhysicsWarning, match="dedge.*knobs"):
        to_pals(lat)


@pytest.mark.parametrize("suffix", [".pals.yaml", ".pals.json"])
def test_pals_files_round_trip(tmp_path, suffix):
    lat, _ = jacc.lattices.iota()
    path = tmp_path / ("iota" + suffix)
    _quiet(write_pals, lat, path)
    assert read_pals(path) == lat


@pytest.mark.parametrize("text, problem", [
    ("PALS:\n  facility:\n  - d1: {kind: Drift, length: 1.0\n", r"line \d+: malformed YAML"),
    ("PALS:\n  facility:\n  - w1: {kind: Wiggler, length: 1.0}\n  - l: {kind: BeamLine, line: [w1]}\n",
     r"line 3: element 'w1'.*Wiggler"),
    ("PALS:\n  facility:\n  - l: {kind: BeamLine, line: [nothing]}\n", "'nothing' is placed but never defined"),
    ("PALS:\n  facility:\n  - d: {kind: Drift, length: -1.0}\n  - l: {kind: BeamLine, line: [d]}\n",
     r"line 3: element 'd'.*field 'l'.*greater than or equal to 0"),
    ("PALS:\n  facility:\n  - d: {kind: Drift, length: 1.0}\n", "no BeamLine or Lattice"),
    ("PALS:\n  facility: 3\n", "not a valid PALS document"),
])
def test_malformed_pals(tmp_path, text, problem):
    path = tmp_path / "bad.pals.yaml"
    path.write_text(text)
    with pytest.raises(LatticeError, match=problem) as err:
        read_pals(path)
    assert str(path) in str(err.value)


@pytest.fixture(scope="module")
def fodo():
    return jacc.lattices.fodo_ring()


def test_fodo_twiss_through_pals(fodo):
    lat, rp = fodo
    back = from_pals(_quiet(to_pals, lat))
    _same_twiss(jacc.twiss(lat, rp), jacc.twiss(back, rp))


@pytest.mark.slow
def test_iota_twiss_through_pals():
    lat, rp = jacc.lattices.iota()
    back = from_pals(_quiet(to_pals, lat))
    _same_twiss(jacc.twiss(lat, rp), jacc.twiss(back, rp))


def _same_twiss(a, b):
    # the lattices are equal, so the optics must be: 1e-12 is the bound
    assert abs(float(a.qx) - float(b.qx)) < 1e-12 and abs(float(a.qy) - float(b.qy)) < 1e-12
    for c in ("betx", "bety", "dx", "mux"):
        np.testing.assert_allclose(np.asarray(b[c]), np.asarray(a[c]), rtol=1e-12, atol=1e-12)
