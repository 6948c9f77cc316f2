"""MAD-X import (through cpymad) and export of a `Lattice`.

Import walks MAD-X's expanded sequence: every element lands at the ``s`` MAD-X gives it (entry
positions), gaps become explicit ``Drift`` placements (one definition per distinct length,
named ``drift_<length>``), a label placed several times becomes one definition with several
placements. Strengths tied to MAD-X variables through deferred expressions (``k1:=kqa1r``,
``kqa1r:=kq01``) keep the tie: the leaf variables become knobs and the field expressions are
rewritten in terms of them. See :func:`read_madx` for the element-by-element rules.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ._madx_read import SequenceBuilder
from ._madx_session import MadxSession
from ._madx_write import write_madx
from .base import LatticeError, PhysicsWarning
from .lattice import Lattice

__all__ = ["beam_reference_particle", "from_cpymad", "read_madx", "write_madx"]


def read_madx(path, sequence: str | None = None, *, name: str | None = None,
              timeout: float = 120.0) -> Lattice:
    """Import a MAD-X file through cpymad (``Lattice.from_madx``).

    Args:
        path: MAD-X file (it may ``call`` others, relative to the working directory as in MAD-X).
        sequence: sequence (or line) to import. ``None``: the one named in a ``use`` command,
            else the only sequence not nested in another, else an error listing the candidates.
        name: lattice name (default: the sequence name).
        timeout: seconds after which MAD-X is killed and a LatticeError raised.

    Element rules: drift -> Drift; marker -> Marker; monitor/hmonitor/vmonitor/instrument ->
    Monitor; placeholder, collimator/rcollimator/ecollimator -> Drift (or Marker if thin)
    carrying their aperture; quadrupole, sbend, rbend (``l`` the chord, as MAD-X), dipedge
    (DipoleEdge; ``side`` 'exit' when it follows a bend, else 'entry'), sextupole, octupole,
    multipole, hkicker/vkicker (``kick`` -> xangle/yangle), kicker/tkicker (HVCorrector,
    ``hkick``/``vkick``), solenoid, rfcavity (``volt`` [MV] -> ``voltage`` = volt * 1e6 / |q|
    [V], |q| the beam's charge, since JACC's cavity gives an energy gain |q| V as Xsuite;
    ``freq`` [MHz] -> Hz), nllens (NonlinearLens). Bends and edges: ``hgap`` -> ``gap`` =
    2 hgap, ``h1/h2`` -> ``h_pole1/2``. Apertures circle/rectangle/ellipse on any element;
    EALIGN errors (dx, dy, dpsi -> dtilt) and simple field errors as per-placement overrides.
    Other MAD-X types raise LatticeError; attributes JACC does not model go to ``extra["madx"]``
    with a PhysicsWarning. The beam command is kept in ``lat.extra["beam"]`` (MAD-X units: GeV).

    Knobs: a field given by a deferred expression with variables (``k1:=kqa1r``) keeps it,
    rewritten in the leaf variables, which become ``lat.knobs``; lengths, positions and list
    fields (``knl``) are evaluated, so a knob never moves an element. A thick solenoid's
    ``ks := ...``, which MAD-X stores as a number, is read from the file (IOTA's ``ksel``).
    MAD-X's warnings are re-issued as PhysicsWarning; warnings that mean a statement was
    skipped are errors.

    Raises:
        LatticeError: missing file, MAD-X errors (with MAD-X's message), unknown sequence,
            ambiguous choice, unsupported element type, overlapping elements.
    """
    path = os.fspath(path)
    with MadxSession(timeout=timeout) as session:
        session.call(path)
        text = Path(path).read_text(errors="replace")
        lat = _import(session, sequence, source=path, text=text)
    if name is not None:
        lat.name = name
    return lat


def from_cpymad(madx, sequence: str | None = None) -> Lattice:
    """Import a sequence from a running cpymad ``Madx`` (same rules as :func:`read_madx`).

    The sequence is (re)activated with ``use`` only when it is not already the active one, so
    errors assigned after an earlier ``use`` are kept.
    """
    return _import(_Borrowed(madx), sequence, source="cpymad")


def beam_reference_particle(beam: dict[str, Any], species: str | None = None):
    """A ``ReferenceParticle`` from a MAD-X beam dict (``lat.extra["beam"]``).

    MAD-X's own mass (its CODATA 2018 table for named particles) and total energy are used, so
    that optics computed in JACC match MAD-X's.

    Args:
        beam: MAD-X beam attributes (``particle``, ``mass`` [GeV], ``charge`` [e], ``energy``
            [GeV]).
        species: species name for the particle (default: MAD-X's ``particle``).
    """
    from jacc.particles import ReferenceParticle

    particle = species or str(beam.get("particle", "positron"))
    return ReferenceParticle.from_energy(particle, float(beam["energy"]) * 1e9,
                                         mass0=float(beam["mass"]) * 1e9,
                                         charge=float(beam["charge"]))


# ---------------------------------------------------------------------------------------- core
class _Borrowed:
    """A user's Madx seen through the session interface (no output capture, no watchdog)."""

    def __init__(self, madx):
        self.madx = madx

    def run(self, what: str, action) -> None:
        try:
            action()
        except Exception as err:
            raise LatticeError(f"{what}: MAD-X failed: {err}") from None


def _import(session, sequence: str | None, source: str, text: str | None = None) -> Lattice:
    madx = session.madx
    had_beam = _has_beam(madx)
    seq_name = _choose_sequence(session, sequence, source)
    seq = madx.sequence[seq_name]
    beam = _beam(madx, seq) if had_beam else None  # not the default beam `use` needed
    charge = beam["charge"] if beam is not None else 1.0  # MAD-X's default beam: a positron
    builder = SequenceBuilder(madx, seq_name, charge=charge, source=text)
    builder.walk(seq)
    extra: dict[str, Any] = {}
    if beam is not None:
        extra["beam"] = beam
    try:
        return Lattice(name=seq_name, definitions=builder.definitions, line=builder.line,
                       overrides=builder.overrides, knobs=builder.knobs.knobs(),
                       expressions=builder.expressions, extra=extra)
    except (ValueError, TypeError) as err:
        raise LatticeError(f"{source}, sequence '{seq_name}': {err}") from None


def _choose_sequence(session, sequence: str | None, source: str) -> str:
    """Apply the sequence rule of :func:`read_madx` and make sure it is expanded."""
    madx = session.madx
    names = list(madx.sequence)
    active = _active_sequence(madx)
    if sequence is not None:
        sequence = sequence.lower()
        if sequence == active:
            return sequence
        if sequence not in names:
            # A LINE becomes a sequence only when used; a name that is neither stays unknown.
            _ensure_beam(session, madx, source)
            try:
                session.run(f"{source}: use, period={sequence}",
                            lambda: madx.command.use(period=sequence))
            except LatticeError:
                pass
            if sequence not in list(madx.sequence):
                raise LatticeError(
                    f"{source}: no sequence or line '{sequence}'; sequences available: "
                    f"{names or 'none'}")
            return sequence
    elif active is not None:
        return active
    else:
        nested = set()
        for n in names:
            for el in madx.sequence[n].elements:
                if type(el).__name__ == "Sequence":
                    nested.add(el.name)
        top = [n for n in names if n not in nested]
        used = [n for n in names if madx.sequence[n].is_expanded]
        if len(used) > 1:
            # MAD-X keeps no record of which `use` came last once another sequence is defined.
            raise LatticeError(
                f"{source}: ambiguous sequence: `use` was applied to several sequences {used} "
                f"and a later definition hides which came last; pass sequence= one of them")
        if not top:
            raise LatticeError(f"{source}: defines no sequence (and no `use` of a line)")
        if len(top) > 1:
            raise LatticeError(
                f"{source}: ambiguous sequence: {len(top)} top-level sequences {top} and no "
                f"`use` command; pass sequence= one of them")
        sequence = top[0]
    _ensure_beam(session, madx, source)
    session.run(f"{source}: use, sequence={sequence}", lambda: madx.use(sequence))
    return sequence


def _active_sequence(madx) -> str | None:
    """The sequence named in the last ``use`` (MAD-X expands only what was used), or None."""
    try:
        seq = madx.sequence()
    except Exception:  # no current sequence
        seq = None
    # MAD-X's current sequence is also the last one defined: only an expanded one was used.
    if seq is not None and seq.is_expanded:
        return seq.name
    used = [n for n in madx.sequence if madx.sequence[n].is_expanded]
    return used[0] if len(used) == 1 else None


def _has_beam(madx) -> bool:
    """Whether the input gave a ``beam`` command (MAD-X lists a template beam regardless)."""
    for name in madx.beams:
        if name != "default_beam" or str(madx.beams[name]["sequence"]):
            return True
    return False


def _ensure_beam(session, madx, source: str) -> None:
    # MAD-X refuses `use` without a beam (fatal); a default beam changes nothing we import.
    if not _has_beam(madx):
        session.run(f"{source}: beam", lambda: madx.command.beam())


def _beam(madx, seq) -> dict[str, Any] | None:
    """The beam attached to the sequence (or the default beam), MAD-X units, or None."""
    try:
        beam = seq.beam
    except Exception:
        beam = madx.beams.get("default_beam") if list(madx.beams) else None
    if beam is None:
        return None
    out = {"particle": str(beam["particle"]), "mass": float(beam["mass"]),
           "charge": float(beam["charge"]), "energy": float(beam["energy"]),
           "pc": float(beam["pc"]), "gamma": float(beam["gamma"])}
    bv = float(beam["bv"]) if "bv" in beam else 1.0
    if bv != 1.0:
        warnings.warn(f"beam bv={bv:g}: strengths are imported as written in the file "
                      "(bv is not applied)", PhysicsWarning, stacklevel=4)
        out["bv"] = bv
    return out
