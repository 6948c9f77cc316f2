"""MAD-X import and export against MAD-X itself (cpymad): positions, counts, knobs, tunes.

Each MAD-X file is parsed once per module (cpymad start-up and import take ~0.5 s).
"""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

from jacc.lattice import (Drift, FieldMap, Lattice, LatticeError, Marker, PhysicsWarning,
                          Quadrupole)
from jacc.lattice._madx_tables import MADX_TYPES
from jacc.lattice.io_madx import from_cpymad, read_madx
from jacc.lattices import data_path

cpymad = pytest.importorskip("cpymad.madx")
pytestmark = pytest.mark.madx

S_TOL = 1e-9      # [m] the task's placement tolerance (our s sums MAD-X's lengths: ~1e-13)
TUNE_TOL = 1e-9   # MAD-X twiss of the exported file vs the original: same model, rounding only


def _madx(path=None, text=None):
    m = cpymad.Madx(stdout=False)
    if path is not None:
        m.call(str(path))
    if text is not None:
        m.input(text)
    return m


def _twiss_rows(m, **init):
    """A copy of the TWISS table (cpymad tables are live views), with the summary tunes."""
    tw = m.twiss(**init)
    rows = {k: np.array(tw[k]) for k in ("s", "betx", "bety", "x", "y", "mux", "muy")}
    rows["name"] = [str(n).split(":")[0] for n in tw.name]
    rows["q"] = (float(m.table.summ.q1[0]), float(m.table.summ.q2[0]))
    return rows


def _matched(lat, rows):
    """(placement, row index) pairs: k-th MAD-X row named X <-> k-th placement of X.

    MAD-X numbers occurrences per nested sequence (every FODO cell has `qf:1`), so the
    occurrence is counted here along s.
    """
    by_name = collections.defaultdict(list)
    for p in lat.elements:
        by_name[p.name].append(p)
    seen = collections.Counter()
    out = []
    for i, name in enumerate(rows["name"]):
        if name in by_name:
            seen[name] += 1
            out.append((by_name[name][seen[name] - 1], i))
    return out


class _Ring:
    def __init__(self, path, seq):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PhysicsWarning)  # the IOTA beam is over-specified
            self.lat = read_madx(path)
        self.madx = _madx(path)
        self.madx.use(seq)
        self.rows = _twiss_rows(self.madx)
        self.expanded = [(e.name, e.base_type.name) for e in self.madx.sequence[seq].expanded_elements]


@pytest.fixture(scope="module")
def iota():
    return _Ring(data_path("t1_iota_8_4_with_correctors.madx"), "iota")


@pytest.fixture(scope="module")
def fodo():
    return _Ring(data_path("fodo40.madx"), "ring")


@pytest.fixture(params=["iota", "fodo"])
def ring(request):
    return request.getfixturevalue(request.param)


# ------------------------------------------------------------------ placement and counts
def test_every_element_at_madx_s(ring):
    pairs = _matched(ring.lat, ring.rows)
    placed = [p for p in ring.lat.elements if not isinstance(p.definition, Drift)]
    assert len(pairs) == len(placed)  # every non-drift placement has its MAD-X row, in order
    ds = [abs(p.s_end - ring.rows["s"][i]) for p, i in pairs]
    assert max(ds) < S_TOL, max(ds)
    assert abs(ring.lat.length - ring.rows["s"][-1]) < S_TOL


def test_entry_positions_as_madx_sequence(ring):
    """Against the sequence's entry positions, we differ exactly where MAD-X's own TWISS does.

    IOTA's file gives positions to 10 digits, so a bend overlaps its dipedge by up to 3e-9 m;
    MAD-X then inserts no drift and its TWISS s lags the positions (5.5e-9 m at most).
    """
    seq = ring.madx.sequence[ring.lat.name]
    rows = [(e.name, pos, e.length) for e, pos in zip(seq.expanded_elements,
                                                      seq.expanded_element_positions())]
    table = {"name": [n for n, _, _ in rows]}
    pairs = _matched(ring.lat, table)
    assert len(pairs) == len([p for p in ring.lat.elements if not isinstance(p.definition, Drift)])
    for p, i in pairs:
        _, pos, length = rows[i]
        madx_lag = abs(ring.rows["s"][i] - (pos + length))  # MAD-X TWISS vs its own positions
        assert abs(p.s_start - pos) <= madx_lag + 1e-12, (p.key, p.s_start, pos)


def test_element_counts_per_type(ring):
    expected = collections.Counter(
        MADX_TYPES[kind] for name, kind in ring.expanded
        if not (kind == "drift" and name.startswith("drift_")) and "$" not in name)
    got = ring.lat.count_by_type()
    got.pop("Drift", None)
    assert got == dict(expected)


def test_iota_inventory(iota):
    counts = iota.lat.count_by_type()
    assert counts["HVCorrector"] == 20 and counts["Monitor"] == 21 and counts["SBend"] == 8
    assert counts["DipoleEdge"] == 16 and counts["Quadrupole"] == 79
    # one definition per MAD-X label, placed as often as MAD-X places it
    madx_count = collections.Counter(name for name, _ in iota.expanded)
    for label in ("sqa1r", "mn09", "dedge30", "qa1r"):
        assert len(iota.lat.placements_of(label)) == madx_count[label]
    assert madx_count["sqa1r"] == 2 and madx_count["mn09"] == 8
    mn09 = iota.madx.elements["mn09"]
    ap = iota.lat["mn09"].aperture
    assert (ap.shape, ap.a, ap.b) == ("ellipse", *[float(v) for v in mn09.aperture])


def test_fodo_repeats_one_definition(fodo):
    assert len(fodo.lat.placements_of("qf")) == 40 and len(fodo.lat.placements_of("mb")) == 80
    assert fodo.lat["rf"].voltage == 0.0 and fodo.lat.expression("rf", "voltage") is not None


def test_dipedge_sides(iota):
    lat = iota.lat
    els = lat.elements
    for k, p in enumerate(els):
        if p.element_name != "DipoleEdge":
            continue
        before = els[k - 1].element_name if k else None
        after = els[k + 1].element_name if k + 1 < len(els) else None
        assert p.side == ("exit" if before == "SBend" else "entry")
        assert before == "SBend" or after == "SBend"  # IOTA edges touch their bend
    assert {lat["dedge30:1"].side, lat["dedge30:2"].side} == {"entry", "exit"}


def test_beam_kept(iota):
    beam = iota.lat.extra["beam"]
    mb = iota.madx.sequence.iota.beam
    for key in ("mass", "charge", "energy", "pc"):
        assert beam[key] == float(mb[key])
    assert beam["particle"] == "electron"


# ------------------------------------------------------------------ knobs
def test_knobs_are_the_leaf_variables(iota):
    lat = iota.lat
    for k in [f"kq{i:02d}" for i in range(1, 21)] + [f"sk{i}" for i in range(1, 7)]:
        assert k in lat.knobs
    assert "kqa1r" not in lat.knobs  # intermediate deferred variable, inlined
    assert sorted(lat.knob_dependents("kq01")) == [("qa1l", "k1"), ("qa1r", "k1")]
    assert lat.knob_dependents("hk_sqa1r") == [("ca1r", "xangle")]
    assert lat.knob_dependents("vk_sqa1r") == [("ca1r", "yangle")]
    assert lat.knob_dependents("k1s_sqa1r") == [("sqa1r", "k1s")]
    assert lat.knob_dependents("ksel") == [("cel", "ks")]  # electron lens, read from the file
    for name, kn in lat.knobs.items():
        assert kn.value == iota.madx.globals[name]


def test_knob_kq01_moves_both_quads_as_madx():
    path = data_path("t1_iota_8_4_with_correctors.madx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PhysicsWarning)
        lat = read_madx(path)
    m = _madx(path)
    new = -9.1
    before = {n: lat[n].k1 for n in ("qa2r", "qa2l")}
    lat.set_knob("kq01", new)
    m.globals["kq01"] = new
    for q in ("qa1r", "qa1l"):
        assert lat[q].k1 == new == m.elements[q].k1
    assert {n: lat[n].k1 for n in before} == before

    other = lat.copy()
    other.knobs["kq01"].value = -8.5  # assignment path: applied on the next read
    assert other["qa1r"].k1 == -8.5 and other["qa1l"].k1 == -8.5

    # MAD-X's tunes with kq01 changed equal those of the exported, changed lattice.
    m.use("iota")
    q_ref = _twiss_rows(m)["q"]
    m2 = _madx(text=lat.to_madx())
    m2.use("iota")
    assert np.allclose(_twiss_rows(m2)["q"], q_ref, rtol=0, atol=TUNE_TOL)


# ------------------------------------------------------------------ export
def test_export_reads_back_with_same_optics(ring):
    text = ring.lat.to_madx()
    m = _madx(text=text)
    m.use(ring.lat.name)
    rows = _twiss_rows(m)
    dq = np.abs(np.subtract(rows["q"], ring.rows["q"]))
    assert dq.max() < TUNE_TOL, dq
    # beta functions at every monitor and magnet exit too (same matching by name)
    ref = {p.key: i for p, i in _matched(ring.lat, ring.rows)}
    back = {p.key: j for p, j in _matched(ring.lat, rows)}
    assert set(ref) <= set(back)
    rel = max(abs(rows["betx"][back[k]] / ring.rows["betx"][i] - 1) for k, i in ref.items())
    assert rel < 1e-9, rel  # same model; twiss accumulates rounding only
    assert from_cpymad(m).line == ring.lat.line  # drifts written explicitly: same structure


def test_export_text_keeps_knob_ties(iota):
    text = iota.lat.to_madx()
    assert "k1 := kq01" in text and "kq01 = -8.824391;" in text
    assert "hkick := hk_sqa1r" in text
    assert "beam, particle = electron" in text
    assert "refer = entry" in text


def test_export_refuses_what_madx_cannot_express():
    lat = Lattice.from_elements([FieldMap(name="fm", l=1.0, z=[0.0, 1.0], bz=[0.1, 0.1])])
    with pytest.raises(LatticeError, match="FieldMap 'fm'"):
        lat.to_madx()
    bad = Lattice.from_elements([Quadrupole(name="q f", l=1.0)])
    with pytest.raises(LatticeError, match="'q f'"):
        bad.to_madx()


# ------------------------------------------------------------------ every MAD-X type
TYPES_MADX = """
beam, particle=proton, energy=2;
ka = 0.1; kb := ka*2; kc := kb + sqrt(ka);
d1: drift, l=0.5;
mk: marker, apertype=rectangle, aperture={0.01, 0.02};
bpm: monitor, l=0.1; hb: hmonitor; vb: vmonitor; ins: instrument, l=0.2;
q: quadrupole, l=0.3, k1:=kc, k1s=0.01, tilt=0.1;
sb: sbend, l=1, angle=0.1, e1=0.02, e2=0.03, fint=0.4, fintx=0.3, hgap=0.02, h1=0.1, h2=0.2,
    k1=0.05, k2=0.1;
rb: rbend, l=1, angle=0.2, e1=0.01;
de: dipedge, h=0.1, e1=0.05, hgap=0.01, fint=0.5;
sx: sextupole, l=0.2, k2=1.5, k2s=0.3;
oc: octupole, l=0.2, k3=10, k3s=2;
mp: multipole, knl={0.001, 0.1, 1}, ksl={0, 0.2}, lrad=0.1;
hk: hkicker, l=0.1, kick=0.001;
vk: vkicker, kick=0.002;
kk: kicker, hkick=0.003, vkick:=ka/100;
tk: tkicker, hkick=0.001;
so: solenoid, l=0.5, ks=0.3;
rf: rfcavity, l=0.4, volt=0.5, freq=200, lag=0.25;
nl: nllens, knll=1e-6, cnll=0.009;
co: collimator, l=0.3, apertype=circle, aperture={0.03};
rc: rcollimator, l=0.3, apertype=ellipse, aperture={0.01, 0.02};
seq: sequence, l=20, refer=entry;
d1, at=0; mk, at=0.5;
bpm, at=0.6; hb, at=0.8; vb, at=0.9; ins, at=1;
q, at=1.5; sb, at=2; rb, at=3.5; de, at=5;
sx, at=5.5; oc, at=6; mp, at=6.5; hk, at=7; vk, at=7.5; kk, at=8; tk, at=8.5;
so, at=9; rf, at=10; nl, at=11; co, at=12; rc, at=13;
q, at=15;
endsequence;
use, sequence=seq;
select, flag=error, clear; select, flag=error, range=q[2];
ealign, dx=0.001, dy=-0.002, dpsi=0.003;
select, flag=error, clear; select, flag=error, class=sextupole;
efcomp, dkn={0, 0, 0.1};
"""
LINE_INIT = dict(betx=2.0, bety=3.0, alfx=0.1, alfy=-0.2)


@pytest.fixture(scope="module")
def types_case(tmp_path_factory):
    path = tmp_path_factory.mktemp("madx") / "types.madx"
    path.write_text(TYPES_MADX)
    lat = read_madx(path)
    m = _madx(path)
    return lat, m, _twiss_rows(m, **LINE_INIT)


def test_every_type_maps_to_its_fields(types_case):
    lat, m, _ = types_case
    kinds = {n: lat[n].element_name for n in lat.definitions if not n.startswith("drift_")}
    assert kinds == {
        "d1": "Drift", "mk": "Marker", "bpm": "Monitor", "hb": "Monitor", "vb": "Monitor",
        "ins": "Monitor", "q": "Quadrupole", "sb": "SBend", "rb": "RBend", "de": "DipoleEdge",
        "sx": "Sextupole", "oc": "Octupole", "mp": "Multipole", "hk": "HKicker",
        "vk": "VKicker", "kk": "HVCorrector", "tk": "HVCorrector", "so": "Solenoid",
        "rf": "RFCavity", "nl": "NonlinearLens", "co": "Drift", "rc": "Drift"}
    sb = lat["sb"]
    assert (sb.gap, sb.fint, sb.fintx, sb.h_pole1, sb.h_pole2) == (0.04, 0.4, 0.3, 0.1, 0.2)
    rb = lat["rb"]
    assert rb.l == 1.0 and abs(rb.path_length - m.sequence.seq.expanded_elements["rb"].length) < 1e-15
    assert (lat["de"].gap, lat["de"].h, lat["de"].side) == (0.02, 0.1, "entry")
    assert lat["mp"].knl == [0.001, 0.1, 1.0] and lat["mp"].ksl == [0.0, 0.2] and lat["mp"].lrad == 0.1
    assert lat["hk"].xangle == 0.001 and lat["vk"].yangle == 0.002
    assert lat["kk"].xangle == 0.003 and lat["kk"].yangle == pytest.approx(0.001, rel=1e-15)
    assert lat["rf"].voltage == 0.5e6 and lat["rf"].frequency == 200e6 and lat["rf"].lag == 0.25
    assert (lat["nl"].knll, lat["nl"].cnll) == (1e-6, 0.009)
    assert lat["co"].aperture.shape == "circle" and lat["co"].aperture.b == 0.03
    assert lat["mk"].aperture.shape == "rectangle" and lat["ins"].extra["madx"]["type"] == "instrument"
    assert lat["q"].tilt == 0.1
    assert lat.expressions["q"]["k1"] == "((ka*2)+sqrt(ka))"
    # EALIGN on the second q only; EFCOMP dkn[2] on the sextupole adds dkn/l to k2
    assert lat["q:2"].dx == 0.001 and lat["q:2"].dy == -0.002 and lat["q:2"].dtilt == 0.003
    assert lat["q:1"].dx == 0.0
    assert lat["sx:1"].k2 == pytest.approx(1.5 + 0.1 / 0.2, rel=1e-15)


def test_every_type_exports_with_same_optics(types_case):
    lat, _, ref = types_case
    m = _madx(text=lat.to_madx())
    m.use("seq")
    got = _twiss_rows(m, **LINE_INIT)
    for key in ("betx", "bety", "mux", "muy", "x", "y"):
        # same model; rounding only (the orbit checks misalignments and kicks)
        assert abs(got[key][-1] - ref[key][-1]) < 1e-12 * max(1.0, abs(ref[key][-1])), key
    assert abs(got["s"][-1] - ref["s"][-1]) < S_TOL


def test_rf_voltage_per_unit_charge(tmp_path):
    """JACC's voltage gives an energy gain |q| V (as Xsuite's importer): VOLT / |q| on import."""
    path = tmp_path / "ion.madx"
    path.write_text("beam, particle=ion, mass=3.7, charge=2, energy=10;\nv = 0.3;\n"
                    "rf: rfcavity, l=0, volt:=v, freq=100;\n"
                    "s: sequence, l=1; rf, at=0.5; endsequence;\n")
    lat = read_madx(path)
    assert lat["rf"].voltage == pytest.approx(0.3e6 / 2, rel=1e-15)
    lat.set_knob("v", 0.5)
    assert lat["rf"].voltage == pytest.approx(0.5e6 / 2, rel=1e-15)
    m = _madx(text=lat.to_madx())
    m.use("s")
    assert m.elements["rf"].volt == pytest.approx(0.5, rel=1e-15)  # back to MAD-X's energy gain
    assert m.sequence.s.beam["charge"] == 2.0


def test_thick_solenoid_ks_tie_read_from_file(tmp_path):
    """MAD-X keeps a thick solenoid's ``ks := k`` as a number: the tie comes from the file,
    and only where it gives MAD-X's value (a later ``k = ...`` does not move MAD-X's ks)."""
    path = tmp_path / "sol.madx"
    path.write_text("beam; ka = 0.2; kb = 0.1;\n"
                    "s1: solenoid, l=1, ks:=ka; ! ks:=kb in a comment\n"
                    "s2: solenoid, l=1, ks := 2*kb;\nkb = 0.3;\n"
                    "s: sequence, l=3; s1, at=0.5; s2, at=2; endsequence;\n")
    m = _madx(path)
    assert m.elements["s1"].cmdpar["ks"].expr is None  # the MAD-X behaviour worked around
    with pytest.warns(PhysicsWarning, match="s2"):
        lat = read_madx(path)
    assert lat.expressions == {"s1": {"ks": "ka"}} and list(lat.knobs) == ["ka"]
    assert lat["s2"].ks == m.elements["s2"].ks == pytest.approx(0.2, rel=1e-15)


def test_ipi_line_imports(shared_lattices):
    path = shared_lattices / "ipi_standin.madx"
    lat = read_madx(path)
    assert lat.name == "ipi" and lat.extra["beam"]["particle"] == "proton"
    m = _madx(path)
    init = dict(betx=0.25, bety=0.25, alfx=-0.8, alfy=0.8)
    ref = _twiss_rows(m, **init)
    pairs = _matched(lat, ref)
    assert max(abs(p.s_end - ref["s"][i]) for p, i in pairs) < S_TOL
    assert abs(lat.length - ref["s"][-1]) < S_TOL
    assert sorted(lat.knob_dependents("kq5")) == [("q5", "k1")] and len(lat.placements_of("q5")) == 2
    m2 = _madx(text=lat.to_madx())
    m2.use("ipi")
    got = _twiss_rows(m2, **init)
    assert abs(got["mux"][-1] - ref["mux"][-1]) < 1e-12 and abs(got["muy"][-1] - ref["muy"][-1]) < 1e-12


# ------------------------------------------------------------------ errors
def _write(tmp_path, text, name="bad.madx"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_file_is_named(tmp_path):
    with pytest.raises(LatticeError, match="nothere.madx"):
        read_madx(tmp_path / "nothere.madx")


@pytest.mark.parametrize("text, said", [
    ("q: quadrupole, l=1, kk=1;\n", "illegal keyword"),           # fatal: MAD-X exits
    ("q: quadrupole, l=1;\nthis is not madx;\n", "unknown"),       # warning: statement skipped
])
def test_file_madx_cannot_read(tmp_path, text, said):
    path = _write(tmp_path, text)
    with pytest.raises(LatticeError, match=said) as err:
        read_madx(path)
    assert str(path) in str(err.value)


def test_missing_sequence_lists_available(tmp_path):
    path = _write(tmp_path, "q: quadrupole, l=1;\ns1: sequence, l=2; q, at=1; endsequence;\n")
    with pytest.raises(LatticeError, match=r"no sequence or line 'ring'.*\['s1'\]"):
        read_madx(path, sequence="ring")


def test_ambiguous_sequence_lists_candidates(tmp_path):
    path = _write(tmp_path, "q: quadrupole, l=1;\n"
                            "s1: sequence, l=2; q, at=1; endsequence;\n"
                            "s2: sequence, l=3; q, at=1; endsequence;\n")
    with pytest.raises(LatticeError, match=r"ambiguous.*\['s1', 's2'\]"):
        read_madx(path)
    assert read_madx(path, sequence="s2").length == 3.0  # naming one resolves it


def test_use_picks_the_sequence(tmp_path):
    path = _write(tmp_path, "beam; q: quadrupole, l=1;\n"
                            "s1: sequence, l=2; q, at=1; endsequence;\n"
                            "s2: sequence, l=3; q, at=1; endsequence;\nuse, sequence=s1;\n")
    assert read_madx(path).name == "s1"
    with open(path, "a") as f:
        f.write("use, sequence=s2;\n")
    assert read_madx(path).name == "s2"  # the last `use`
    with open(path, "a") as f:
        f.write("s3: sequence, l=4; q, at=1; endsequence;\n")
    with pytest.raises(LatticeError, match=r"ambiguous.*\['s1', 's2'\]"):
        read_madx(path)  # MAD-X no longer tells which `use` came last


def test_nested_sequence_is_not_a_candidate(fodo):
    assert fodo.lat.name == "ring"  # `cell` is nested in `ring`, the file has no `use`


@pytest.mark.parametrize("kind", ["crabcavity", "beambeam", "matrix", "elseparator"])
def test_unsupported_madx_type_is_named(tmp_path, kind):
    path = _write(tmp_path, f"beam; x1: {kind};\ns: sequence, l=2; x1, at=1; endsequence;\n")
    with pytest.raises(LatticeError, match=rf"element 'x1'.*'{kind}'"):
        read_madx(path)


def test_unmodelled_aperture_warns_and_is_kept(tmp_path):
    path = _write(tmp_path, "beam; m1: marker, apertype=racetrack, aperture={0.1, 0.2, 0.01, 0.01};\n"
                            "s: sequence, l=2; m1, at=1; endsequence;\n")
    with pytest.warns(PhysicsWarning, match="racetrack"):
        lat = read_madx(path)
    assert lat["m1"].aperture is None and lat["m1"].extra["madx"]["apertype"] == "racetrack"


def test_borrowed_madx_keeps_errors_and_sequence(types_case):
    _, m, _ = types_case
    lat = from_cpymad(m)  # `seq` is the used sequence: not re-used, EALIGN kept
    assert lat["q:2"].dx == 0.001
    assert isinstance(lat["mk"], Marker)


def test_line_named_explicitly(tmp_path):
    path = _write(tmp_path, "beam; d: drift, l=1; q: quadrupole, l=0.5, k1=0.2;\n"
                            "ll: line=(d, q, d);\n")
    with pytest.raises(LatticeError, match="defines no sequence"):
        read_madx(path)  # a line is a candidate only once used
    lat = read_madx(path, sequence="ll")
    assert lat.line == ["d", "q", "d"] and lat.length == 2.5


def test_never_hangs(tmp_path):
    path = _write(tmp_path, "x = 0;\nwhile (x < 1e12) { x = x + 1; }\n")
    with pytest.raises(LatticeError, match=r"did not finish within 1 s"):
        read_madx(path, timeout=1.0)
