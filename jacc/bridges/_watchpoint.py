"""An in-memory beam position monitor for ImpactX, built on its ``Programmable`` element.

ImpactX's own ``BeamMonitor`` writes openPMD files. `ImpactXWatchpoint` keeps what it sees
in memory instead: its ``push`` hook reads the particle container when the beam passes and
stores one record per lattice period (turn), every ``interval`` periods, in a buffer that
holds the last ``max_records`` records. Coordinates are converted to MAD-X's
``(x, px, y, py, t, pt)`` (`jacc.particles.impactx_to_madx`), so records compare directly with
JACC's monitors (`jacc.track(..., record="centroid")`).
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jacc.particles import impactx_to_madx

__all__ = ["ImpactXWatchpoint", "WatchpointConfig", "particle_arrays"]

# ImpactX's particle attributes in MAD-X order (x, px, y, py, t, pt)
_COLUMNS = ("position_x", "momentum_x", "position_y", "momentum_y", "position_t", "momentum_t")


class WatchpointConfig(BaseModel):
    """What a watchpoint records.

    Attributes:
        mode: ``"centroid"``: the mean ``(6,)`` of the surviving particles; ``"coordinate"``:
            every surviving particle's coordinates ``(n, 6)`` with its ImpactX ``idcpu``;
            ``"parameter"``: beam moments (mean ``(6,)``, covariance ``(6, 6)``, rms sizes
            and the three projected rms emittances).
        interval: record every ``interval``-th period (turn) passing, from period 0.
        max_records: buffer length; older records are dropped once it is full.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["coordinate", "centroid", "parameter"] = Field(default="centroid")
    interval: int = Field(default=1, ge=1, description="periods between records")
    max_records: int = Field(default=10_000, ge=1, description="records kept (the latest)")


def particle_arrays(pc) -> tuple[np.ndarray, np.ndarray]:
    """``(idcpu (n,), coordinates (n, 6))`` of an ImpactX particle container, in ImpactX's
    coordinates and storage order (copies; no pandas)."""
    import impactx

    ids, cols = [], [[] for _ in _COLUMNS]
    for pti in impactx.ImpactXParIter(pc, level=0):
        soa = pti.soa().to_numpy()
        ids.append(np.array(soa.idcpu, copy=True))
        for c, name in zip(cols, _COLUMNS):
            c.append(np.array(soa.real[name], copy=True))
    if not ids:
        return np.zeros(0, np.uint64), np.zeros((0, 6))
    return np.concatenate(ids), np.stack([np.concatenate(c) for c in cols], axis=1)


def _moments(x: np.ndarray) -> dict:
    """Mean, covariance, rms sizes and projected rms emittances of MAD-X coordinates."""
    n = x.shape[0]
    mean = x.mean(axis=0) if n else np.full(6, np.nan)
    cov = np.cov(x, rowvar=False, bias=True) if n > 1 else np.full((6, 6), np.nan)
    emit = [float(np.sqrt(max(np.linalg.det(cov[i:i + 2, i:i + 2]), 0.0))) for i in (0, 2, 4)]
    return {"n": n, "mean": mean, "cov": cov, "sigma": np.sqrt(np.diag(cov)),
            "emit_x": emit[0], "emit_y": emit[1], "emit_t": emit[2]}


class ImpactXWatchpoint:
    """In-memory BPM: an ImpactX ``Programmable`` element whose push hook records the beam.

    Place `element` in an ImpactX lattice (the ImpactX exporter does so at every `Monitor`
    when ``default_monitor_type="custom"``). After tracking, `records` holds dicts with
    ``period`` (turn), ``step`` (ImpactX's step counter) and the data of the mode:
    ``centroid`` (6,), or ``idcpu`` and ``coordinates`` (n, 6), or the moments of
    `WatchpointConfig`. All coordinates are MAD-X's ``(x, px, y, py, t, pt)``.

    Args:
        name: the element name (the monitor's placement name).
        config: a `WatchpointConfig` (mode, interval, buffer length).
    """

    def __init__(self, name: str, config: WatchpointConfig | None = None):
        from impactx import elements

        self.name = name
        self.config = WatchpointConfig() if config is None else config
        self.records: deque = deque(maxlen=self.config.max_records)
        self._last_period: int | None = None
        self.element = elements.Programmable(ds=0.0, nslice=1, name=name)
        # the hook holds this object, not the element: ImpactX may store a copy of the element
        self.element.push = self._push

    def reset(self) -> None:
        """Forget every record (before tracking again)."""
        self.records.clear()
        self._last_period = None

    def _push(self, pc, step, period) -> None:
        period = int(period)
        if period == self._last_period or period % self.config.interval:
            return  # one record per period; every `interval`-th period only
        self._last_period = period
        ids, coords = particle_arrays(pc)
        order = np.argsort(ids, kind="stable")  # storage order is not the particles' order
        x = np.asarray(impactx_to_madx(coords[order]))
        rec = {"period": period, "step": int(step)}
        mode = self.config.mode
        if mode == "centroid":
            rec["centroid"] = x.mean(axis=0) if x.shape[0] else np.full(6, np.nan)
        elif mode == "coordinate":
            rec["idcpu"], rec["coordinates"] = ids[order], x
        else:
            rec.update(_moments(x))
        self.records.append(rec)

    @property
    def periods(self) -> np.ndarray:
        """Period (turn) of each record."""
        return np.asarray([r["period"] for r in self.records], dtype=np.int64)

    @property
    def centroids(self) -> np.ndarray:
        """``(n_records, 6)`` centroid of each record, whatever the mode."""
        if not self.records:
            return np.zeros((0, 6))
        mode = self.config.mode
        if mode == "coordinate":
            return np.stack([r["coordinates"].mean(axis=0) for r in self.records])
        return np.stack([r["centroid" if mode == "centroid" else "mean"] for r in self.records])

    def __repr__(self) -> str:
        return (f"ImpactXWatchpoint('{self.name}', mode={self.config.mode!r}, "
                f"{len(self.records)} records)")
