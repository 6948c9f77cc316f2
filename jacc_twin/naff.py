"""Tunes from turn-by-turn BPM data with NAFF (`nafflib`, the Xsuite project's package)."""

from __future__ import annotations

import numpy as np

__all__ = ["naff_tune", "naff_tunes"]


def naff_tune(signal) -> float:
    """Fractional tune in [0, 0.5] of one BPM's turn-by-turn signal (mean removed; Hann window)."""
    import nafflib

    s = np.asarray(signal, float)
    if s.ndim != 1 or s.size < 16:
        raise ValueError(f"naff_tune: needs a 1-D signal of at least 16 turns, got shape {s.shape}")
    q = float(nafflib.tune(s - s.mean()))
    q = abs(q) % 1.0
    return min(q, 1.0 - q)


def naff_tunes(x, y) -> tuple[float, float]:
    """Fractional tunes ``(qx, qy)``: the median over BPMs of each BPM's NAFF tune.

    Args:
        x, y: turn-by-turn positions, shape (n_turns, n_bpms) [m].
    """
    x, y = np.atleast_2d(np.asarray(x, float).T).T, np.atleast_2d(np.asarray(y, float).T).T
    return (float(np.median([naff_tune(x[:, i]) for i in range(x.shape[1])])),
            float(np.median([naff_tune(y[:, i]) for i in range(y.shape[1])])))
