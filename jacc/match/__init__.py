"""Matching (DESIGN.md layer 5): vary knobs until optics targets are reached.

``jacc.match(lat, rp, knobs={"qf": "k1", "qd": "k1"}, targets={"qx": 4.30, "qy": 2.60})``;
the pieces (`Vary`, `Target`, `Matcher`, `solve`) are public for finer control.
"""

from ._knobs import Vary, apply_values, current_values, flagged_copy, parse_knobs
from ._match import Matcher, MatchOptions, MatchResult, match
from ._solve import SolveResult, as_solver, solve
from ._targets import ResolvedTargets, Target, parse_targets, resolve_targets, row_of

__all__ = ["MatchOptions", "MatchResult", "Matcher", "ResolvedTargets", "SolveResult", "Target",
           "Vary", "apply_values", "as_solver", "current_values", "flagged_copy", "match",
           "parse_knobs", "parse_targets", "resolve_targets", "row_of", "solve"]
