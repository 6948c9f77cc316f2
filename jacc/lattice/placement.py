"""`PlacedElement`: a view of one placement of an element definition in a lattice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Element

if TYPE_CHECKING:
    from .lattice import Lattice

_OWN = ("_lattice", "index", "occurrence", "s_start")


class PlacedElement:
    """One placement: the definition's fields plus this placement's overrides and s positions.

    Reading a field gives the value in force here. Setting a field (``lat["qf:3"].k1 = 0.5``,
    ``lat["qf:3"].diff_params = ["k1"]``) overrides it for this placement alone.

    Attributes:
        index: position in ``lat.line`` (0-based).
        occurrence: which placement of this definition it is (1-based, MAD-X ``name:n``).
        s_start, s_mid, s_end: positions of the entrance, middle and exit [m].
    """

    def __init__(self, lattice: "Lattice", index: int, occurrence: int, s_start: float):
        object.__setattr__(self, "_lattice", lattice)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "occurrence", occurrence)
        object.__setattr__(self, "s_start", s_start)

    @property
    def definition(self) -> Element:
        """The shared definition (fields set on it apply to every placement)."""
        return self._lattice.definitions[self._lattice.line[self.index]]

    @property
    def element(self) -> Element:
        """The element in force at this placement (definition plus overrides)."""
        return self._lattice.element_at(self.index)

    @property
    def key(self) -> str:
        """``name:n``, the key that selects this placement alone."""
        return f"{self.name}:{self.occurrence}"

    @property
    def s_end(self) -> float:
        return self.s_start + self.element.path_length

    @property
    def s_mid(self) -> float:
        return 0.5 * (self.s_start + self.s_end)

    @property
    def overrides(self) -> dict:
        return dict(self._lattice.overrides.get(self.index, {}))

    def __getattr__(self, item):
        if item.startswith("__"):
            raise AttributeError(item)
        return getattr(self.element, item)

    def __setattr__(self, item, value):
        if item in _OWN:
            raise AttributeError(f"'{item}' of a placement is derived and cannot be set")
        el = self.definition
        if item not in type(el).model_fields or item in ("name", "element_name"):
            raise AttributeError(f"{el.element_name} '{el.name}' has no settable field '{item}'")
        fields = dict(self._lattice.overrides.get(self.index, {}))
        fields[item] = value
        el.with_updates(**fields)  # validates, naming the element and field on error
        overrides = dict(self._lattice.overrides)
        overrides[self.index] = fields
        self._lattice.overrides = overrides

    def __repr__(self) -> str:
        return (f"<{self.element_name} {self.key} s={self.s_start:.6f}..{self.s_end:.6f} m>")
