"""Model presets: which physics and which integration method each element type uses.

A preset maps an element type name (``"Quadrupole"``) to an ``(ElementPhysics, Method)``
pair. ``Xsuite()`` reproduces Xsuite's default models (edges included); ``XsuiteFullEdge()``
uses Xsuite's full (nonlinear) dipole-edge model. Every entry can be replaced::

    jacc.Xsuite(methods={"Sextupole": DriftKick(order=4, slices=8)})
    jacc.Xsuite(models={"Quadrupole": (Quadrupole(), DriftKick(order=4, slices=4))})
"""

from __future__ import annotations

import importlib
from typing import Mapping

import equinox as eqx

from jacc.physics.base import ElementPhysics, Method

# Physics modules that contribute their Xsuite defaults (module-level dicts).
_PHYSICS_MODULES = ("drift", "quadrupole", "multipole", "kicker", "solenoid", "rfcavity",
                    "nllens", "bend", "dipedge", "fieldmap", "nlinsert")


def _collect(attr: str) -> dict[str, tuple[ElementPhysics, Method]]:
    out: dict[str, tuple[ElementPhysics, Method]] = {}
    for mod in _PHYSICS_MODULES:
        try:
            module = importlib.import_module(f"jacc.physics.{mod}")
        except ModuleNotFoundError as err:
            if err.name != f"jacc.physics.{mod}":
                raise
            continue
        out.update(getattr(module, attr, None) or getattr(module, "XSUITE_DEFAULTS", {}))
    return out


class Preset(eqx.Module):
    """A named bundle of element models; ``model(element_name)`` returns (physics, method)."""

    models: Mapping[str, tuple[ElementPhysics, Method]] = eqx.field(static=True)

    def __init__(self, models: Mapping | None = None, methods: Mapping | None = None):
        base = dict(self._defaults())
        for kind, pair in (models or {}).items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(f"{type(self).__name__}: models['{kind}'] must be (physics, method)")
            base[kind] = pair
        for kind, method in (methods or {}).items():
            if kind not in base:
                raise KeyError(f"{type(self).__name__}: no model for element type '{kind}' "
                               f"to change the method of; known: {sorted(base)}")
            if not isinstance(method, Method):
                raise TypeError(f"{type(self).__name__}: methods['{kind}'] must be a Method object")
            base[kind] = (base[kind][0], method)
        self.models = base

    def _defaults(self) -> dict[str, tuple[ElementPhysics, Method]]:
        return {}

    def fixed_options(self, element_name: str) -> dict:
        """Static options the preset imposes whatever the description says (see XsuiteFullEdge)."""
        return {}

    def model(self, element_name: str, element: str = "?") -> tuple[ElementPhysics, Method]:
        """The (physics, method) pair of element type ``element_name``."""
        try:
            return self.models[element_name]
        except KeyError:
            raise NotImplementedError(
                f"{type(self).__name__} has no model for {element_name} (element '{element}'); "
                f"element types with a model: {sorted(self.models)}") from None


class Xsuite(Preset):
    """Xsuite's default models (xtrack's ``from_madx_sequence`` defaults, linear edges)."""

    def _defaults(self):
        return _collect("XSUITE_DEFAULTS")


class XsuiteExactBend(Preset):
    """Xsuite's defaults with exact dipole flows in bends (xtrack bend model 'bend-kick-bend').

    Pure dipoles (no k1, k2) then track as one exact flow: much faster than the default
    'rot-kick-rot' split, which agrees with the exact flow only to its truncation error
    (~1e-10 m at mm amplitudes in IOTA's 60-degree bends).
    """

    def _defaults(self):
        out = _collect("XSUITE_DEFAULTS")
        out.update({k: v for k, v in _collect("XSUITE_EXACT_BEND").items() if k in ("SBend", "RBend")})
        return out


class XsuiteFullEdge(Preset):
    """Xsuite's defaults with the full (nonlinear) dipole-edge model (xtrack edge model 'full').

    Xsuite's MAD-X import turns every ``dipedge`` into an entry edge, also the ones at a
    bend's exit; with the linear model that does not matter, with the full one it does
    (~1e-5 in x and py per IOTA edge at mm amplitudes). To reproduce Xsuite, this preset
    treats every DipoleEdge as an entry face; build your own preset without
    `fixed_options` to honour each edge's ``side``.
    """

    def fixed_options(self, element_name: str) -> dict:
        return {"side": "entry"} if element_name == "DipoleEdge" else {}

    def _defaults(self):
        out = _collect("XSUITE_DEFAULTS")
        out.update({k: v for k, v in _collect("XSUITE_FULL_EDGE").items()
                    if k in ("SBend", "RBend", "DipoleEdge")})
        return out
