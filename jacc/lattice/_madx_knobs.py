"""MAD-X deferred expressions rewritten in terms of their leaf variables (the knobs).

``k1 := kqa1r`` with ``kqa1r := kq01`` and ``kq01 = -8.82`` becomes ``k1 = kq01``: deferred
intermediate variables are inlined, variables without an expression are the knobs, MAD-X's
predefined constants that JACC's expressions do not know are inlined as numbers.
"""

from __future__ import annotations

import re
import warnings

from ._madx_tables import MADX_CONSTANTS
from .base import PhysicsWarning
from .expressions import CONSTANTS, Expression, ExpressionError
from .lattice import Knob

__all__ = ["MadxKnobs"]


class MadxKnobs:
    """Rewrites MAD-X deferred expressions in terms of leaf variables (the knobs)."""

    def __init__(self, madx):
        self.madx = madx
        self.leaves: dict[str, float] = {}
        self._cache: dict[str, str | None] = {}

    def knobs(self) -> dict[str, Knob]:
        return {k: Knob(value=v, description="MAD-X variable") for k, v in self.leaves.items()}

    def snapshot(self) -> tuple[dict[str, float], dict[str, str | None]]:
        """State to :meth:`restore` when a rewritten expression is not kept."""
        return dict(self.leaves), dict(self._cache)

    def restore(self, state: tuple[dict[str, float], dict[str, str | None]]) -> None:
        self.leaves, self._cache = dict(state[0]), dict(state[1])

    def rewrite(self, text: str, seen: tuple[str, ...] = ()) -> str:
        """``text`` with every intermediate deferred variable inlined; leaves are recorded."""
        out = text.strip().lower()
        for var in Expression.parse(out).names:
            if var in seen:
                raise ExpressionError(f"variable '{var}' depends on itself")
            repl = self._variable(var, seen + (var,))
            if repl is not None:
                out = re.sub(rf"(?<![\w.]){re.escape(var)}(?![\w.(])", repl, out)
        return out

    def _variable(self, var: str, seen) -> str | None:
        """Replacement text for ``var`` (None: keep the name, it is a leaf knob)."""
        if var in self._cache:
            return self._cache[var]
        g = self.madx.globals
        par = g.cmdpar[var] if var in g else None
        expr = getattr(par, "expr", None) if par is not None else None
        if var in MADX_CONSTANTS and var not in CONSTANTS:
            repl = repr(float(g[var]))
        elif expr is None:
            if par is None:
                warnings.warn(f"MAD-X variable '{var}' is never defined; MAD-X takes 0",
                              PhysicsWarning, stacklevel=6)
            self.leaves[var] = float(g[var]) if par is not None else 0.0
            repl = None
        else:
            inner = self.rewrite(str(expr), seen)
            repl = inner if re.fullmatch(r"[\w.]+", inner) else f"({inner})"
        self._cache[var] = repl
        return repl


