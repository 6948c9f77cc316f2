"""MCMC convergence diagnostics and posterior summaries.

Samples are arrays of shape ``(n_chains, n_draws, ...)``. R-hat is the split potential scale
reduction factor (Gelman et al., Bayesian Data Analysis 3rd ed., eq. 11.4, chains split in
halves); the effective sample size combines within- and between-chain autocorrelations with
Geyer's initial monotone sequence estimator, as Stan does (Stan Reference Manual, "Effective
sample size").
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np


def _as_chains(samples) -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    if x.ndim < 2:
        raise ValueError(f"samples must have shape (n_chains, n_draws, ...), got {x.shape}")
    if x.shape[1] < 4:
        raise ValueError(f"need at least 4 draws per chain, got {x.shape[1]}")
    return x


def split_rhat(samples) -> np.ndarray:
    """Split R-hat of ``samples`` (n_chains, n_draws, ...): ~1 when the chains agree.

    Each chain is split into two halves (so a drift within one chain shows too), then
    ``sqrt(((n - 1)/n W + B/n) / W)`` with W the mean within-chain variance and B/n the
    variance of the chain means.
    """
    x = _as_chains(samples)
    half = x.shape[1] // 2
    x = np.concatenate([x[:, :half], x[:, -half:]], axis=0)
    n = x.shape[1]
    means = x.mean(axis=1)
    w = x.var(axis=1, ddof=1).mean(axis=0)
    b_over_n = means.var(axis=0, ddof=1)
    var_plus = (n - 1) / n * w + b_over_n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(var_plus / w)


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Autocovariance along axis 1 (biased, by FFT), shape as ``x``."""
    n = x.shape[1]
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    d = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(d, n=size, axis=1)
    ac = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n]
    return ac / n


def effective_sample_size(samples) -> np.ndarray:
    """Effective sample size of ``samples`` (n_chains, n_draws, ...), summed over chains."""
    x = _as_chains(samples)
    m, n = x.shape[:2]
    acov = _autocovariance(x)
    mean_var = acov[:, 0].mean(axis=0) * n / (n - 1)
    var_plus = mean_var * (n - 1) / n
    if m > 1:
        var_plus = var_plus + x.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # Geyer: sum autocorrelations in pairs while the pair sums stay positive, and force the
    # pair sums to decrease (the initial monotone sequence)
    n_pairs = n // 2
    pairs = rho[: 2 * n_pairs].reshape((n_pairs, 2) + rho.shape[1:]).sum(axis=1)
    positive = np.cumprod(pairs > 0, axis=0).astype(bool)
    pairs = np.where(positive, pairs, 0.0)
    pairs = np.minimum.accumulate(pairs, axis=0)
    tau = -1.0 + 2.0 * pairs.sum(axis=0)
    tau = np.maximum(tau, 1.0 / np.log10(m * n))
    return m * n / tau


@dataclasses.dataclass(frozen=True)
class PosteriorSummary:
    """Per-parameter posterior summary (flattened parameter names ``name[i]``).

    Attributes:
        names: parameter names.
        mean, std, median: posterior moments.
        lower, upper: central credible interval of probability ``prob``.
        ess: effective sample size; rhat: split R-hat.
        prob: the credible interval's probability.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    median: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    ess: np.ndarray
    rhat: np.ndarray
    prob: float

    @property
    def rhat_max(self) -> float:
        return float(np.nanmax(self.rhat))

    @property
    def ess_min(self) -> float:
        return float(np.nanmin(self.ess))

    def to_dict(self) -> dict:
        return {n: {"mean": float(a), "std": float(b), "median": float(c), "lower": float(d),
                    "upper": float(e), "ess": float(f), "rhat": float(g)}
                for n, a, b, c, d, e, f, g in zip(self.names, self.mean, self.std, self.median,
                                                  self.lower, self.upper, self.ess, self.rhat)}

    def __str__(self) -> str:
        w = max(8, max(len(n) for n in self.names))
        p = int(round(100 * self.prob))
        head = (f"{'param'.ljust(w)} {'mean':>11} {'std':>10} {'median':>11} {f'{p}% lo':>11} "
                f"{f'{p}% hi':>11} {'ess':>8} {'rhat':>7}")
        rows = [head]
        for i, n in enumerate(self.names):
            rows.append(f"{n.ljust(w)} {self.mean[i]:11.4g} {self.std[i]:10.3g} {self.median[i]:11.4g} "
                        f"{self.lower[i]:11.4g} {self.upper[i]:11.4g} {self.ess[i]:8.0f} {self.rhat[i]:7.4f}")
        return "\n".join(rows)


def flatten_samples(samples: Mapping[str, np.ndarray], n_batch: int = 2) -> tuple[list[str], np.ndarray]:
    """``(names, array (..., n_params))`` from named samples with ``n_batch`` leading axes."""
    names, cols = [], []
    for key, v in samples.items():
        v = np.asarray(v, dtype=float)
        lead = v.shape[:n_batch]
        flat = v.reshape(lead + (-1,))
        size = flat.shape[-1]
        event = v.shape[n_batch:]
        if not event:
            names.append(key)
        else:
            names += [f"{key}[{','.join(map(str, idx))}]" for idx in np.ndindex(*event)]
        cols.append(flat if size else flat[..., :0])
    return names, np.concatenate(cols, axis=-1)


def summarize(samples: Mapping[str, np.ndarray], prob: float = 0.9) -> PosteriorSummary:
    """Posterior summary of named samples, each of shape (n_chains, n_draws, ...)."""
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    names, x = flatten_samples(samples)
    flat = x.reshape(-1, x.shape[-1])
    lo, hi = np.quantile(flat, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return PosteriorSummary(tuple(names), flat.mean(0), flat.std(0, ddof=1), np.median(flat, 0),
                            lo, hi, effective_sample_size(x), split_rhat(x), prob)


def coverage(samples, truth, prob: float = 0.9) -> np.ndarray:
    """Whether each true value lies in its central ``prob`` credible interval.

    Args:
        samples: (n_chains, n_draws, n) or (n_draws, n) posterior draws.
        truth: (n,) true values.
    """
    x = np.asarray(samples, dtype=float)
    flat = x.reshape(-1, x.shape[-1])
    lo, hi = np.quantile(flat, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    t = np.asarray(truth, dtype=float)
    return (t >= lo) & (t <= hi)
