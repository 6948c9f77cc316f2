"""Calibration and inference (DESIGN.md layer 5): ORM, LOCO, Bayesian LOCO, diagnostics, plots.

- `OrbitResponse`: closed orbit at the BPMs, ORM and dispersion by ``jax.jacfwd``;
  `LinearResponse`: the same from fused transfer matrices (fast, for fits and HMC).
- `ErrorSpec`, `MeasurementSimulator`, `simulate_measurement`: seeded errors and simulated
  measurements.
- `Loco`, `loco`: Levenberg-Marquardt LOCO; `BayesianLoco`: NumPyro model, NUTS and
  BlackJAX samplers on the same density.
- `diagnostics` (R-hat, ESS, summaries) and `plots` (corner plot, residuals).
"""

from . import diagnostics, plots
from .bayes import BayesianLoco, Laplace, LocoPriors
from .diagnostics import PosteriorSummary, coverage, effective_sample_size, split_rhat, summarize
from .errors import (ErrorSpec, Measurement, MeasurementSimulator, TrueErrors, draw_errors, quad_knobs,
                     quad_magnets, simulate_measurement)
from .loco import GROUPS, Loco, LocoModel, LocoOptions, LocoResult, loco
from .orm import OrbitResponse, OrmLayout, select_layout
from .response import LinearResponse
from .sampling import (Posterior, SamplerOptions, sample_blackjax, sample_blackjax_datasets,
                       sample_numpyro)

__all__ = [
    "BayesianLoco", "ErrorSpec", "GROUPS", "Laplace", "LinearResponse", "Loco", "LocoModel", "LocoOptions",
    "LocoPriors", "LocoResult", "Measurement", "MeasurementSimulator", "OrbitResponse", "OrmLayout",
    "Posterior", "PosteriorSummary", "SamplerOptions", "TrueErrors", "coverage", "diagnostics",
    "draw_errors", "effective_sample_size", "loco", "plots", "quad_knobs", "quad_magnets",
    "sample_blackjax", "sample_blackjax_datasets", "sample_numpyro", "select_layout",
    "simulate_measurement", "split_rhat", "summarize",
]
