"""The JACC preset that tracks like a line exported with a given `XsuiteExporterConfig`."""

from __future__ import annotations

from jacc.engine.presets import Preset, Xsuite, XsuiteExactBend, XsuiteFullEdge


class _FullEdgeBySide(XsuiteFullEdge):
    """`XsuiteFullEdge` honouring each `DipoleEdge`'s own ``side`` (no forced entry face)."""

    def fixed_options(self, element_name: str) -> dict:
        return {}


def matching_preset(config) -> Preset:
    """``Xsuite()``, ``XsuiteFullEdge()``, ``XsuiteExactBend()`` or their combination."""
    exact = config.bend_model == "bend-kick-bend"
    if config.edge_model == "linear":
        return XsuiteExactBend() if exact else Xsuite()
    cls = XsuiteFullEdge if config.dipole_edge_side == "entry" else _FullEdgeBySide
    if not exact:
        return cls()
    from jacc.physics.bend import ExactSBend, Yoshida6
    from jacc.physics.edge import FullEdge

    body = (ExactSBend(edge=FullEdge()), Yoshida6())
    return cls(models={"SBend": body, "RBend": body})
