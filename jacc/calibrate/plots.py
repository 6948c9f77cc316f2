"""Plots of fits and posteriors: corner plot, fitted vs true errors, ORM residuals, loss history.

Every function returns a matplotlib ``Figure`` and draws nothing on screen by itself (tests
use the Agg backend). matplotlib is imported lazily so that the calibration code does not
need it.
"""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib.pyplot as plt

    return plt


def most_correlated(draws: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` parameters chosen greedily by their largest |correlation|.

    Args:
        draws: (n_draws, n_params) samples (chains flattened).
    """
    x = np.asarray(draws, dtype=float)
    n = x.shape[1]
    k = min(k, n)
    std = x.std(axis=0)
    c = np.corrcoef(x, rowvar=False) if n > 1 else np.ones((1, 1))
    c = np.where(np.outer(std, std) > 0, c, 0.0)
    a = np.abs(c - np.eye(n))
    # start from the most correlated pair, then add the parameter most correlated with the set
    i, j = np.unravel_index(np.argmax(a), a.shape)
    chosen = [int(i)] if k == 1 else [int(i), int(j)]
    while len(chosen) < k:
        score = a[:, chosen].max(axis=1)
        score[chosen] = -1.0
        chosen.append(int(np.argmax(score)))
    return np.asarray(chosen)


def corner(draws, names=None, *, truths=None, params=None, max_params: int = 6, bins: int = 30,
           scale: float = 1.0, unit: str = ""):
    """Corner plot: marginal histograms on the diagonal, pairwise densities below it.

    Args:
        draws: (n_chains, n_draws, n_params) or (n_draws, n_params) posterior samples.
        names: parameter names (length n_params).
        truths: true values to mark (length n_params), optional.
        params: indices to show; default: the ``max_params`` most correlated parameters.
        max_params: how many to show when ``params`` is not given.
        bins: histogram bins.
        scale: multiply values before plotting (e.g. 1e3 for per mille).
        unit: axis unit label.
    """
    plt = _plt()
    x = np.asarray(draws, dtype=float)
    x = x.reshape(-1, x.shape[-1])
    n_all = x.shape[1]
    names = [f"p{i}" for i in range(n_all)] if names is None else list(names)
    if len(names) != n_all:
        raise ValueError(f"corner: {len(names)} names for {n_all} parameters")
    idx = most_correlated(x, max_params) if params is None else np.asarray(params, dtype=int)
    v = x[:, idx] * scale
    t = None if truths is None else np.asarray(truths, dtype=float)[idx] * scale
    k = len(idx)
    fig, axes = plt.subplots(k, k, figsize=(1.9 * k + 1, 1.9 * k + 1), squeeze=False)
    for r in range(k):
        for c in range(k):
            ax = axes[r, c]
            if c > r:
                ax.set_visible(False)
                continue
            if r == c:
                ax.hist(v[:, c], bins=bins, color="C0", histtype="stepfilled", alpha=0.6)
                if t is not None:
                    ax.axvline(t[c], color="C3", lw=1)
                ax.set_yticks([])
            else:
                ax.hist2d(v[:, c], v[:, r], bins=bins, cmap="Blues")
                if t is not None:
                    ax.axvline(t[c], color="C3", lw=0.8)
                    ax.axhline(t[r], color="C3", lw=0.8)
                    ax.plot(t[c], t[r], "s", color="C3", ms=3)
                rho = np.corrcoef(v[:, c], v[:, r])[0, 1]
                ax.text(0.03, 0.92, f"ρ={rho:+.2f}", transform=ax.transAxes, fontsize=7, va="top")
            if r == k - 1:
                ax.set_xlabel(f"{names[idx[c]]}{' [' + unit + ']' if unit else ''}", fontsize=8)
            else:
                ax.set_xticklabels([])
            if c == 0 and r > 0:
                ax.set_ylabel(f"{names[idx[r]]}", fontsize=8)
            elif c > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def errors_vs_truth(names, fitted, truth, *, lower=None, upper=None, scale: float = 1.0,
                    unit: str = "", title: str = ""):
    """Fitted (with credible intervals when given) against true values, one point per parameter."""
    plt = _plt()
    f = np.asarray(fitted) * scale
    t = np.asarray(truth) * scale
    i = np.arange(len(f))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6, 0.18 * len(f) + 2), 5), sharex=True)
    a1.plot(i, t, "o", mfc="none", color="C3", label="true")
    if lower is not None and upper is not None:
        lo, hi = np.asarray(lower) * scale, np.asarray(upper) * scale
        a1.errorbar(i, f, yerr=[f - lo, hi - f], fmt=".", color="C0", label="fit (interval)")
    else:
        a1.plot(i, f, ".", color="C0", label="fit")
    a1.set_ylabel(f"value{' [' + unit + ']' if unit else ''}")
    a1.legend(fontsize=8)
    a2.bar(i, f - t, color="C2")
    a2.set_ylabel("fit - true")
    a2.set_xticks(i)
    a2.set_xticklabels(names, rotation=90, fontsize=6)
    if title:
        a1.set_title(title)
    fig.tight_layout()
    return fig


def orm_residuals(measured, model_before, model_after, *, noise: float | None = None):
    """ORM residual maps before and after a fit, and their histograms [same units as the ORM]."""
    plt = _plt()
    r0 = np.asarray(measured) - np.asarray(model_before)
    r1 = np.asarray(measured) - np.asarray(model_after)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, r, name in ((axes[0], r0, "before"), (axes[1], r1, "after")):
        m = np.max(np.abs(r)) or 1.0
        im = ax.imshow(r, cmap="RdBu_r", vmin=-m, vmax=m, aspect="auto")
        ax.set_title(f"measured - model, {name} (rms {np.sqrt(np.mean(r**2)):.2e})", fontsize=9)
        ax.set_xlabel("corrector (x then y)")
        ax.set_ylabel("BPM (x then y)")
        fig.colorbar(im, ax=ax)
    axes[2].hist(r1.ravel(), bins=50, color="C0", alpha=0.7, density=True, label="after fit")
    if noise:
        g = np.linspace(-4 * noise, 4 * noise, 200)
        axes[2].plot(g, np.exp(-0.5 * (g / noise) ** 2) / (noise * np.sqrt(2 * np.pi)), "C3",
                     label="noise")
    axes[2].legend(fontsize=8)
    axes[2].set_title("residual distribution", fontsize=9)
    fig.tight_layout()
    return fig


def loss_history(history, *, title: str = "loss per step"):
    """Solver loss per step (log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    h = np.asarray(history, dtype=float)
    ax.semilogy(np.arange(1, len(h) + 1), np.maximum(h, np.finfo(float).tiny), ".-")
    ax.set_xlabel("step")
    ax.set_ylabel("0.5 sum r^2")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def trace(draws, names=None, *, params=None, max_params: int = 4):
    """Trace plots of chains (n_chains, n_draws, n_params) for a few parameters."""
    plt = _plt()
    x = np.asarray(draws, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"trace: draws must have shape (n_chains, n_draws, n_params), got {x.shape}")
    idx = np.arange(min(max_params, x.shape[2])) if params is None else np.asarray(params, dtype=int)
    names = [f"p{i}" for i in range(x.shape[2])] if names is None else list(names)
    fig, axes = plt.subplots(len(idx), 1, figsize=(7, 1.6 * len(idx)), sharex=True, squeeze=False)
    for a, i in zip(axes[:, 0], idx):
        for ch in range(x.shape[0]):
            a.plot(x[ch, :, i], lw=0.6)
        a.set_ylabel(names[i], fontsize=8)
    axes[-1, 0].set_xlabel("draw")
    fig.tight_layout()
    return fig
