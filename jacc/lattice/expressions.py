"""MAD-X deferred expressions (``k1 := kq01 * 1.02``), parsed once, evaluated with any array module.

The same expression is evaluated with NumPy when the description is updated and with
``jax.numpy`` inside the engine, so that knobs stay differentiable.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

CONSTANTS = {
    "pi": math.pi,
    "twopi": 2 * math.pi,
    "degrad": 180 / math.pi,
    "raddeg": math.pi / 180,
    "e": math.e,
    "clight": 299792458.0,
}
FUNCTIONS = ("sqrt", "exp", "log", "log10", "sin", "cos", "tan", "arcsin", "arccos", "arctan",
             "sinh", "cosh", "tanh", "abs", "floor", "ceil")
_MADX_FUNCTION_NAMES = {"asin": "arcsin", "acos": "arccos", "atan": "arctan"}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated (names the expression)."""


@dataclass(frozen=True)
class Expression:
    """A parsed arithmetic expression over named knobs.

    Attributes:
        text: the expression as written (Python syntax, ``**`` for powers).
        names: knob names it reads.
    """

    text: str
    names: tuple[str, ...] = field(default=())
    _tree: ast.AST | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> "Expression":
        """Parse MAD-X or Python arithmetic: ``^`` means power, names are case-insensitive."""
        py = re.sub(r"\^", "**", text.strip()).lower()
        try:
            tree = ast.parse(py, mode="eval").body
        except SyntaxError as err:
            raise ExpressionError(f"cannot parse expression {text!r}: {err.msg}") from None
        names = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fname = getattr(node.func, "id", None)
                if _MADX_FUNCTION_NAMES.get(fname, fname) not in FUNCTIONS or node.keywords:
                    raise ExpressionError(f"expression {text!r}: unsupported function {fname!r}")
            elif isinstance(node, ast.Name):
                if node.id not in CONSTANTS and node.id not in FUNCTIONS and node.id not in _MADX_FUNCTION_NAMES:
                    names.append(node.id)
            elif not isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Constant, ast.Load,
                                       *_BINARY, *_UNARY)):
                raise ExpressionError(f"expression {text!r}: unsupported syntax {type(node).__name__}")
        return cls(text=py, names=tuple(dict.fromkeys(names)), _tree=tree)

    def evaluate(self, values, xp: ModuleType = np):
        """Evaluate with knob ``values`` (a mapping name -> number or array) and module ``xp``."""
        tree = self._tree if self._tree is not None else Expression.parse(self.text)._tree

        def ev(node):
            if isinstance(node, ast.Constant):
                return node.value
            if isinstance(node, ast.Name):
                if node.id in CONSTANTS:
                    return CONSTANTS[node.id]
                try:
                    return values[node.id]
                except KeyError:
                    raise ExpressionError(f"expression {self.text!r}: unknown knob {node.id!r}") from None
            if isinstance(node, ast.BinOp):
                return _BINARY[type(node.op)](ev(node.left), ev(node.right))
            if isinstance(node, ast.UnaryOp):
                return _UNARY[type(node.op)](ev(node.operand))
            if isinstance(node, ast.Call):
                fname = _MADX_FUNCTION_NAMES.get(node.func.id, node.func.id)
                return getattr(xp, fname)(*[ev(a) for a in node.args])
            raise ExpressionError(f"expression {self.text!r}: cannot evaluate {ast.dump(node)}")

        return ev(tree)
