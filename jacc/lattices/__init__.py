"""Embedded reference lattices (package data) with their reference particles.

- :func:`iota`: the IOTA ring v8.4 (Fermilab), with the 20 skew-quadrupole packages split
  around thin H/V correctors (``t1_iota_8_4_with_correctors.madx``; Fermilab BSD licence in
  ``data/LICENSE.iota``).
- :func:`fodo_ring`: a 40-cell FODO ring, 452 m, 1 GeV electrons (``fodo40.madx``).

Files are parsed by MAD-X (cpymad) once per process; every call returns a fresh copy that
the caller may edit.
"""

from __future__ import annotations

import functools
import warnings
from importlib import resources
from pathlib import Path

from jacc.lattice import Lattice, PhysicsWarning
from jacc.lattice.io_madx import beam_reference_particle, read_madx
from jacc.particles import ReferenceParticle, codata2018_mass

from .nonlinear_insert import NonlinearInsert, insert_beta, with_nonlinear_insert

__all__ = ["NonlinearInsert", "data_path", "fodo_ring", "insert_beta", "iota", "reference_from_beam",
           "with_nonlinear_insert"]

IOTA_FILE = "t1_iota_8_4_with_correctors.madx"
FODO_FILE = "fodo40.madx"
IOTA_PROTON_KINETIC_ENERGY = 2.5e6  # [eV], the IOTA proton injector's energy


def data_path(filename: str) -> Path:
    """Path of an embedded data file (e.g. ``data_path("fodo40.madx")`` for benchmarks)."""
    path = Path(str(resources.files(__name__).joinpath("data", filename)))
    if not path.is_file():
        raise FileNotFoundError(f"no embedded lattice file '{filename}' in {path.parent}")
    return path


@functools.lru_cache(maxsize=None)
def _parsed(filename: str) -> Lattice:
    with warnings.catch_warnings():
        # The IOTA beam command over-specifies the energy (energy, pc, gamma, beta); MAD-X
        # notes that it keeps `energy`. Known and harmless for the embedded files.
        warnings.simplefilter("ignore", PhysicsWarning)
        return read_madx(data_path(filename))


def iota(species: str = "electron", *,
         nonlinear_insert: NonlinearInsert | None = None) -> tuple[Lattice, ReferenceParticle]:
    """The IOTA ring with 20 H/V correctors (knobs ``hk_sq*``, ``vk_sq*``) and its particle.

    Args:
        species: ``"electron"``: the file's beam, total energy 150.511006 MeV (kinetic
            150.000007 MeV) with MAD-X's electron mass 0.51099895 MeV (CODATA 2018: MAD-X
            replaces the file's 0.510998928 MeV by its own for ``particle=electron``), so
            that tunes and momenta match MAD-X; ``"proton"``: 2.5 MeV kinetic energy, with
            MAD-X's proton mass (CODATA 2018), as IOTA runs with protons.
        nonlinear_insert: None (the bare drift), or a `NonlinearInsert`: thin Danilov-Nagaitsev
            lens slices filled along the nonlinear section (between ``nlr1`` and ``nlr2``,
            1.8 m, phase advance 0.3; see `jacc.lattices.nonlinear_insert`), or with
            ``thick=True`` thick segments integrated with diffrax.

    Returns:
        ``(lat, rp)``: a fresh copy of the lattice and a ``ReferenceParticle``. The magnet
        strengths are normalised (k1, angles) and are the same for both species.
    """
    if species not in ("electron", "proton"):
        raise ValueError(f"iota: species must be 'electron' or 'proton', got {species!r}")
    lat = _parsed(IOTA_FILE).copy()
    rp = reference_from_beam(lat, species)
    if nonlinear_insert is not None:
        lat = with_nonlinear_insert(lat, nonlinear_insert)
    return lat, rp


def fodo_ring() -> tuple[Lattice, ReferenceParticle]:
    """The 40-cell FODO ring (452 m, RF off: knob ``vrf`` = 0 MV) and its 1 GeV electron.

    The electron is the file's beam: total energy 1 GeV with MAD-X's electron mass (CODATA
    2018).
    """
    lat = _parsed(FODO_FILE).copy()
    return lat, reference_from_beam(lat)


def reference_from_beam(lat: Lattice, species: str | None = None) -> ReferenceParticle:
    """The reference particle of an imported lattice, from its MAD-X ``beam`` command.

    Masses are MAD-X's (CODATA 2018 for named particles, which MAD-X substitutes for a mass
    written in the file), not JACC's CODATA 2022 defaults, so that momenta, rigidities and
    ``beta0`` equal MAD-X's and Xsuite's for the same file; tunes and ``s`` do not depend on it.

    Args:
        lat: a lattice read by `Lattice.from_madx` (its ``extra["beam"]``).
        species: None, or the beam's own particle: the beam's particle and total energy.
            ``"proton"`` with a beam of another particle (IOTA's electron file): a 2.5 MeV
            kinetic-energy proton, as IOTA runs with protons (strengths are normalised, so
            the same lattice serves both).

    Raises:
        ValueError: no beam in ``lat.extra``, or a species other than these.
    """
    beam = lat.extra.get("beam")
    own = str(beam.get("particle")) if isinstance(beam, dict) else None
    if species is None or species == own:
        if not beam:
            raise ValueError(f"lattice '{lat.name}' carries no MAD-X beam command "
                             "(lat.extra['beam']); build a ReferenceParticle explicitly")
        return beam_reference_particle(beam)
    if species == "proton":
        return ReferenceParticle.from_kinetic_energy(
            "proton", IOTA_PROTON_KINETIC_ENERGY, mass0=codata2018_mass("proton"))
    raise ValueError(f"reference_from_beam: species must be None, the beam's particle "
                     f"({own!r}) or 'proton', got {species!r}")
