"""Seeded faults of the twin's machine, drawn with `jacc.calibrate`'s error model.

The machine differs from its model by: quadrupole supply calibrations (each knob's true
gradient over the excitation function's), quadrupole misalignments, corrector calibrations,
BPM gains, rolls and offsets. `draw_faults` draws them from a seed; the same seed gives the
same machine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultSpec", "Faults", "draw_faults"]


class FaultSpec(BaseModel):
    """RMS values of the seeded faults (Gaussian, zero mean).

    Attributes:
        quad_rel: relative gradient error of each quadrupole supply (knob) [1].
        quad_offset: transverse misalignment of each quadrupole, each plane [m].
        corrector_gain: relative error of each corrector's kick [1].
        bpm_gain: relative BPM gain error, each plane [1]; bpm_roll [rad]; bpm_offset [m].
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    quad_rel: float = Field(default=1e-3, ge=0)
    quad_offset: float = Field(default=50e-6, ge=0)
    corrector_gain: float = Field(default=0.01, ge=0)
    bpm_gain: float = Field(default=0.02, ge=0)
    bpm_roll: float = Field(default=2e-3, ge=0)
    bpm_offset: float = Field(default=100e-6, ge=0)


@dataclasses.dataclass(frozen=True)
class Faults:
    """Drawn faults, by name: quadrupole knob -> calibration, ``"q:n.dx"`` -> offset [m],
    ``(corrector, plane)`` -> calibration, BPM key -> (gain_x, gain_y, roll, offset_x, offset_y)."""

    quad_calibration: dict
    misalignment: dict
    corrector_calibration: dict
    bpm: dict


def no_faults(ring) -> Faults:
    return Faults({k: 1.0 for k in ring.quad_knobs}, {}, {}, {})


def draw_faults(ring, spec: FaultSpec, seed: int) -> Faults:
    """Faults of the machine ``ring`` (`jacc_twin.ring.RingPhysics`) drawn from ``seed``."""
    from jacc.calibrate import ErrorSpec, draw_errors, select_layout
    from jacc.calibrate.errors import quad_knobs, quad_magnets

    lat = ring.lattice
    layout = select_layout(lat, ring.bpms, ring.correctors)
    e = draw_errors(lat, ErrorSpec(quad_rel=spec.quad_rel, bpm_gain=spec.bpm_gain, bpm_roll=spec.bpm_roll,
                                   corrector_gain=spec.corrector_gain), seed,
                    quads=quad_knobs(lat), layout=layout)
    m = draw_errors(lat, ErrorSpec(quad_rel=0.0, quad_offset=spec.quad_offset), seed + 1_000_003,
                    quads=quad_magnets(lat), layout=layout)
    off = spec.bpm_offset * np.random.default_rng([seed, 7]).standard_normal((2, layout.n_bpms))
    mis = {}
    for v, dx, dy in zip(m.quads, m.quad_dx, m.quad_dy):
        mis[f"{v.name}.dx"], mis[f"{v.name}.dy"] = float(dx), float(dy)
    cors = {(k, "xangle"): float(g) for k, g in zip(layout.hcorrectors, e.corrector_gain_h)}
    cors.update({(k, "yangle"): float(g) for k, g in zip(layout.vcorrectors, e.corrector_gain_v)})
    bpm = {k: (float(e.bpm_gain_x[i]), float(e.bpm_gain_y[i]), float(e.bpm_roll[i]), float(off[0, i]),
               float(off[1, i])) for i, k in enumerate(layout.bpms)}
    quad = {v.name: 1.0 + float(r) for v, r in zip(e.quads, e.quad_rel)}
    return Faults(quad, mis, cors, bpm)
