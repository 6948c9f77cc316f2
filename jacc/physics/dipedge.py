"""Thin dipole edge, as MAD-X ``dipedge`` and Xsuite ``xt.DipoleEdge``.

Fields: ``h`` [1/m] (curvature of the bend the face belongs to), ``e1`` [rad] (pole-face
angle), ``gap`` [m] (full gap; MAD-X ``hgap = gap / 2``), ``fint``. ``side`` (entry or
exit face) is static: it only matters for the full model.

What Xsuite 0.118 does: ``xt.Line.from_madx_sequence`` turns a MAD-X ``dipedge`` into
``xt.DipoleEdge(k=h, e1=e1, hgap=hgap, fint=fint)`` with ``model='linear'`` and
``side='entry'`` whatever face it sits on (the importer never sets ``side``). The linear
model kicks ``px += r21 x``, ``py += r43 y`` (MAD-X's matrix, the same on both faces);
``model='full'`` (set by ``line.configure_bend_model(edge='full')``) applies a frame
rotation by ``-e1``, the dipole fringe and the dipole wedge, in reverse order and with
the fringe sign flipped on the exit side (:class:`jacc.physics.edge.FullEdge` without
its multipole part). In that model the neighbouring bend's own edges (``e = 0``, no
``fint``) still apply a hard-edge fringe; only ``NoEdge`` on the bend makes
"bend between dipedges" equal to "bend with its edges".
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from jacc.physics.base import DriftKick, ElementPhysics
from jacc.physics.edge import EdgeModel, FullEdge, LinearEdge

__all__ = ["DipoleEdge", "XSUITE_DEFAULTS", "XSUITE_FULL_EDGE"]

_SIDES = ("entry", "exit")


class DipoleEdge(ElementPhysics):
    """Thin dipole edge: the whole map is the ``entry`` face (no body).

    Being a face rather than a kick (which must scale with its fraction), the edge is
    inverted by the generic face inverse of `Method.inverse`.

    Attributes:
        edge: edge model (:class:`~jacc.physics.edge.LinearEdge` is MAD-X's and Xsuite's
            default).
        side: ``'entry'`` or ``'exit'``: which face of the bend this edge is.
    """

    fields: ClassVar[tuple[str, ...]] = ("h", "e1", "gap", "fint")
    thick: ClassVar[bool] = False
    edge: EdgeModel = LinearEdge()
    side: str = eqx.field(static=True, default="entry")

    def __check_init__(self):
        if self.side not in _SIDES:
            raise ValueError(f"DipoleEdge: side must be one of {_SIDES}, got {self.side!r}")

    def with_side(self, side: str) -> "DipoleEdge":
        """The same physics for the given face (``'entry'`` or ``'exit'``)."""
        return DipoleEdge(edge=self.edge, side=side)

    def entry(self, p, x, ref):
        face = self.edge.exit if self.side == "exit" else self.edge.entry
        return face(x, *self._face(p, ref))

    def entry_inverse(self, p, x, ref):
        face = self.edge.exit_inverse if self.side == "exit" else self.edge.entry_inverse
        return face(x, *self._face(p, ref))

    @staticmethod
    def _face(p, ref):
        return (p["h"], 0.0, 0.0, p["e1"], 0.5 * p["gap"], p["fint"], ref.beta0)

    def matrix(self, p, ref):
        # The body of a face-only element is the identity: the edge itself is ``entry``,
        # which ``Linear()`` applies too (returning the edge here would apply it twice).
        return jnp.eye(6, dtype=jnp.result_type(p["h"], float))

    def edge_matrix(self, p, ref):
        """First-order 6x6 map of the edge (MAD-X ``dipedge`` ``rmatrix`` for the linear model)."""
        return self.edge.matrix(
            p["h"], 0.0, 0.0, p["e1"], 0.5 * p["gap"], p["fint"], ref.beta0,
            exit=self.side == "exit",
        )


# A thin element: the face is all there is (DriftKick()'s drift and kick are identities).
# ``side`` is per element: the engine sets it with ``physics.with_side(element.side)``.
XSUITE_DEFAULTS = {"DipoleEdge": (DipoleEdge(edge=LinearEdge()), DriftKick())}
# ``model='full'`` in Xsuite is the dipole-only full edge (no multipole fringe).
XSUITE_FULL_EDGE = {"DipoleEdge": (DipoleEdge(edge=FullEdge(multipole=False)), DriftKick())}
