"""Turn-by-turn coordinates at one observation point, through `jacc.track`'s compiled programs."""

from __future__ import annotations

import numpy as np

from jacc.engine import track

__all__ = ["turn_by_turn"]


def turn_by_turn(lat, rp, x0, n_turns: int, at=0, model=None):
    """``(coords, alive)``: coordinates (n_turns, n, 6) recorded at placement ``at`` (a name or
    index) after each turn, and the alive flags (n,) at the end.

    `jacc.track` caches its compiled program by lattice structure, so scans that repeat a
    call with the same batch shape and turn count compile once.
    """
    res = track(lat, rp, np.asarray(x0, float), int(n_turns), model=model, record="coordinates",
                monitors=[at])
    return res.monitors.coordinates[:, 0], res.alive
