"""One-element MAD-X references (cpymad) shared by the physics tests."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jacc.physics.base import Reference

# Total energies [GeV] of 150 MeV electrons and 2.5 MeV protons, with MAD-X's masses.
BEAMS = {
    "electron": "beam, particle=electron, energy=0.15051099895;",
    "proton": "beam, particle=proton, energy=0.94077208816;",
}
_COUNTER = itertools.count()


def madx_session(species: str):
    """``(mad, ref)``: a MAD-X instance with the beam of ``species`` and the matching Reference."""
    import cpymad.madx

    mad = cpymad.madx.Madx(stdout=False)
    mad.input(BEAMS[species])
    mad.input("d0: drift, l=1; s0: sequence, l=1; d0, at=0.5; endsequence; use, sequence=s0;")
    beam = mad.sequence.s0.beam
    return mad, Reference(beam.beta, beam.gamma, beam.pc * 1e9, beam.mass * 1e9, beam.charge)


@pytest.fixture(scope="module", params=sorted(BEAMS))
def madx(request):
    """Fixture: a MAD-X instance with the beam of one species, and the matching Reference."""
    mad, ref = madx_session(request.param)
    yield mad, ref
    mad.quit()


def madx_first_order(mad, definition: str, length: float):
    """MAD-X's R matrix and closed orbit at the exit of one element (alone in a sequence)."""
    i = next(_COUNTER)
    seq_length = length if length > 0 else 1.0  # a thin element is followed by a drift
    mad.input(
        f"el{i}: {definition};\n"
        f"seq{i}: sequence, l={seq_length!r}, refer=entry; el{i}, at=0; endsequence;\n"
        f"use, sequence=seq{i};\n"
        "twiss, betx=1, bety=1, rmatrix;"
    )
    tw = mad.table.twiss
    row = list(tw.name).index(f"el{i}:1")
    r = np.array([[tw[f"re{a}{b}"][row] for b in range(1, 7)] for a in range(1, 7)])
    orbit = np.array([tw[k][row] for k in ("x", "px", "y", "py", "t", "pt")])
    return r, orbit
