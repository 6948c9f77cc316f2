"""Embedded lattices: IOTA with correctors and the FODO ring, with reference particles as MAD-X."""

from __future__ import annotations

import pytest

import jacc
from jacc.lattice import Drift
from jacc.lattices import _parsed, data_path
from jacc.particles import ReferenceParticle

cpymad = pytest.importorskip("cpymad.madx")

REL = 1e-15  # same formulas on the same inputs: a few ulps


@pytest.fixture(scope="module")
def iota_beam():
    """MAD-X's beam for the embedded IOTA file (what MAD-X itself computes from it)."""
    m = cpymad.Madx(stdout=False)
    m.call(str(data_path("t1_iota_8_4_with_correctors.madx")))
    m.use("iota")
    beam = m.sequence.iota.beam
    out = {k: float(beam[k]) for k in ("mass", "energy", "pc", "charge")}
    m.input("beam, particle=proton, energy = pmass + 0.0025;")  # IOTA protons: 2.5 MeV kinetic
    out["proton_pc"] = float(m.beam["pc"])
    m.quit()
    return out


def test_iota_electron_as_madx(iota_beam):
    lat, rp = jacc.lattices.iota()
    assert isinstance(lat, jacc.Lattice) and isinstance(rp, ReferenceParticle)
    assert rp.species == "electron" and rp.charge == iota_beam["charge"] == -1.0
    assert rp.mass0 == iota_beam["mass"] * 1e9 and rp.energy0 == iota_beam["energy"] * 1e9
    assert rp.p0c == pytest.approx(iota_beam["pc"] * 1e9, rel=REL)
    assert rp.kin_energy0 == pytest.approx(150.000007e6, rel=1e-9)  # "150 MeV electrons"


def test_iota_proton_as_madx(iota_beam):
    lat, rp = jacc.lattices.iota(species="proton")
    assert rp.species == "proton" and rp.kin_energy0 == pytest.approx(2.5e6, rel=REL)
    assert rp.p0c == pytest.approx(iota_beam["proton_pc"] * 1e9, rel=1e-12)  # GeV sums in MAD-X
    assert lat == jacc.lattices.iota()[0]  # strengths are normalised: the same lattice
    with pytest.raises(ValueError, match="species"):
        jacc.lattices.iota(species="muon")


def test_iota_correctors_and_knobs():
    lat, _ = jacc.lattices.iota()
    correctors = [p for p in lat.elements if p.element_name == "HVCorrector"]
    assert len(correctors) == 20
    for p in correctors:
        pkg = "sq" + p.name[1:]  # ca1r -> sqa1r: the corrector sits inside its skew package
        assert lat.expression(p.name, "xangle").names == (f"hk_{pkg}",)
        assert lat.expression(p.name, "yangle").names == (f"vk_{pkg}",)
        assert p.xangle == 0.0 and p.yangle == 0.0
    lat.set_knob("hk_sqa1r", 1e-4)
    assert lat["ca1r"].xangle == 1e-4 and lat["ca1l"].xangle == 0.0
    assert lat.length == pytest.approx(39.96822972, abs=1e-8)  # MAD-X sums its drifts: 4e-9 short


def test_copies_are_independent_and_parsed_once():
    lat1, _ = jacc.lattices.iota()
    hits = _parsed.cache_info().hits
    lat1.set_knob("kq01", -1.0)
    lat1["qa2r"].k1 = 3.0
    lat2, _ = jacc.lattices.iota()
    assert _parsed.cache_info().hits == hits + 1
    assert lat2["qa1r"].k1 == lat2.knobs["kq01"].value != -1.0 and lat2["qa2r"].k1 != 3.0


def test_reference_from_beam(shared_lattices):
    ipi = jacc.Lattice.from_madx(shared_lattices / "ipi_standin.madx")
    rp = jacc.lattices.reference_from_beam(ipi)
    m = cpymad.Madx(stdout=False)
    m.call(str(shared_lattices / "ipi_standin.madx"))
    beam = {k: float(m.sequence.ipi.beam[k]) for k in ("mass", "energy", "pc")}
    m.quit()
    assert rp.species == "proton" and rp.mass0 == beam["mass"] * 1e9
    assert rp.energy0 == beam["energy"] * 1e9
    assert rp.p0c == pytest.approx(beam["pc"] * 1e9, rel=1e-12)  # MAD-X sums in GeV
    # the beam's own particle named explicitly: the beam, not IOTA's 2.5 MeV default
    assert jacc.lattices.reference_from_beam(ipi, "proton") == rp
    fodo, _ = jacc.lattices.fodo_ring()
    rp_p = jacc.lattices.reference_from_beam(fodo, species="proton")
    assert rp_p.species == "proton" and rp_p.kin_energy0 == pytest.approx(2.5e6, rel=REL)
    with pytest.raises(ValueError, match="species"):
        jacc.lattices.reference_from_beam(fodo, species="positron")
    bare = jacc.Lattice.from_elements([Drift(name="d", l=1.0)])
    with pytest.raises(ValueError, match="no MAD-X beam"):
        jacc.lattices.reference_from_beam(bare)


def test_fodo_ring():
    lat, rp = jacc.lattices.fodo_ring()
    assert lat.name == "ring" and lat.length == pytest.approx(452.0, abs=1e-9)
    counts = lat.count_by_type()
    assert counts["Quadrupole"] == 80 and counts["SBend"] == 80 and counts["Sextupole"] == 80
    assert counts["RFCavity"] == 1 and lat.knobs["vrf"].value == 0.0
    assert rp.species == "electron" and rp.energy0 == 1e9 and rp.mass0 == 0.51099895e6


def test_package_data_present():
    for name in ("t1_iota_8_4_with_correctors.madx", "fodo40.madx", "LICENSE.iota"):
        assert data_path(name).is_file()
    assert "Fermi Research Alliance" in data_path("LICENSE.iota").read_text()
    with pytest.raises(FileNotFoundError, match="nothere"):
        data_path("nothere.madx")
