"""Unique element names for exported lines, the way xtrack's MAD-X import makes them.

A JACC definition placed several times (``lat["qf"]``) becomes one element per placement in
the exported line. xtrack's `Line.from_madx_sequence` names the first placement after the
definition (``qf``) and every later one ``qf:0``, ``qf:1``, ... (the first free ``name:n``,
counting from 0). The exporters use the same rule, so an exported line and xtrack's import
of the same MAD-X file name their elements alike. Note the shift against JACC's own
``lat["qf:n"]``, which counts every placement from 1: JACC's ``qf:3`` is xtrack's ``qf:1``.
"""

from __future__ import annotations


class NameRegistry:
    """Hands out unique element names: ``name`` if free, else the first free ``name:n``."""

    def __init__(self):
        self._used: set[str] = set()

    def take(self, name: str) -> str:
        """A name not handed out before, derived from ``name`` as xtrack does."""
        if name in self._used:
            n = 0
            while f"{name}:{n}" in self._used:
                n += 1
            name = f"{name}:{n}"
        self._used.add(name)
        return name


def check_inputs(who: str, lat, rp) -> None:
    """TypeError naming ``who`` unless ``lat`` is a `jacc.Lattice` and ``rp`` a `ReferenceParticle`."""
    from jacc.lattice import Lattice
    from jacc.particles import ReferenceParticle

    if not isinstance(lat, Lattice):
        raise TypeError(f"{who}: lat must be a jacc.Lattice, got {type(lat).__name__}")
    if not isinstance(rp, ReferenceParticle):
        raise TypeError(f"{who}: rp must be a jacc.ReferenceParticle, got {type(rp).__name__}")


def placement_names(lat) -> list[str]:
    """The unique exported name of every placement of ``lat``, in order along s.

    Example: placements ``qf, qd, qf, qf`` give ``qf, qd, qf:0, qf:1``.
    """
    reg = NameRegistry()
    return [reg.take(name) for name in lat.line]
