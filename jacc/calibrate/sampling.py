"""Posterior sampling of a NumPyro model: NumPyro's NUTS, and BlackJAX on the same log density.

Both samplers see exactly the same target: BlackJAX gets the negative of NumPyro's potential
(the log joint density in NumPyro's unconstrained coordinates, Jacobians included), and its
draws are mapped back to the model's sites with NumPyro's own transforms. A `Posterior`
holds draws as ``(n_chains, n_draws, ...)`` arrays per site, with diagnostics and timings.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS, init_to_uniform, init_to_value
from numpyro.infer.util import initialize_model

from .diagnostics import PosteriorSummary, effective_sample_size, flatten_samples, split_rhat, summarize


@dataclasses.dataclass(frozen=True)
class SamplerOptions:
    """Chain lengths and tuning shared by both samplers.

    Attributes:
        num_warmup: adaptation steps per chain (step size and diagonal mass matrix).
        num_samples: kept draws per chain.
        num_chains: independent chains (R-hat needs at least 2).
        seed: PRNG seed.
        target_accept: target acceptance probability of the step-size adaptation.
        dense_mass: adapt a dense mass matrix (correlated posteriors) instead of a diagonal.
        progress: show progress bars.
    """

    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    seed: int = 0
    target_accept: float = 0.8
    dense_mass: bool = False
    progress: bool = True

    def __post_init__(self):
        for f in ("num_warmup", "num_samples", "num_chains"):
            if int(getattr(self, f)) < 1:
                raise ValueError(f"SamplerOptions: {f} must be >= 1, got {getattr(self, f)}")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"SamplerOptions: target_accept must be in (0, 1), got {self.target_accept}")


@dataclasses.dataclass(frozen=True)
class Posterior:
    """Posterior draws and how they were obtained.

    Attributes:
        samples: site name -> draws, shape (n_chains, n_draws, ...).
        sampler: e.g. ``"numpyro NUTS"``, ``"blackjax nuts"``.
        time_s: wall time of warmup and sampling [s] (compilation included).
        sample_time_s: wall time of the sampling phase alone [s] (compilation included).
        info: sampler statistics (divergences, step size, mean acceptance...).
    """

    samples: dict
    sampler: str
    time_s: float
    sample_time_s: float
    info: dict = dataclasses.field(default_factory=dict)

    def summary(self, prob: float = 0.9, sites=None) -> PosteriorSummary:
        """R-hat, ESS, mean, std and central credible intervals of every parameter."""
        return summarize(self._sites(sites), prob)

    def _sites(self, sites):
        if sites is None:
            return self.samples
        return {k: self.samples[k] for k in sites}

    def flat(self, sites=None) -> tuple[list[str], np.ndarray]:
        """``(names, draws (n_chains, n_draws, n_params))`` of the chosen sites."""
        return flatten_samples(self._sites(sites))

    def rhat_max(self, sites=None) -> float:
        return float(np.nanmax(split_rhat(self.flat(sites)[1])))

    def ess_min(self, sites=None) -> float:
        return float(np.nanmin(effective_sample_size(self.flat(sites)[1])))

    def ess_per_s(self, sites=None) -> float:
        """Smallest effective sample size over the parameters, per second of wall time."""
        return self.ess_min(sites) / self.time_s


def _init_strategy(init: dict | None):
    return init_to_uniform if init is None else init_to_value(values=init)


def sample_numpyro(model: Callable, *args, options: SamplerOptions | None = None,
                   init: dict | None = None, chain_method: str = "sequential", **kwargs) -> Posterior:
    """Sample ``model(*args, **kwargs)`` with NumPyro's NUTS.

    Args:
        model: a NumPyro model.
        options: `SamplerOptions`.
        init: starting values of the latent sites (e.g. a least-squares fit); default: random
            points within (-2, 2) in unconstrained space.
        chain_method: ``"sequential"`` (one program, chains one after the other),
            ``"vectorized"`` (chains in lockstep) or ``"parallel"`` (one device per chain).
    """
    o = SamplerOptions() if options is None else options
    kernel = NUTS(model, target_accept_prob=o.target_accept, dense_mass=o.dense_mass,
                  init_strategy=_init_strategy(init))
    mcmc = MCMC(kernel, num_warmup=o.num_warmup, num_samples=o.num_samples, num_chains=o.num_chains,
                chain_method=chain_method, progress_bar=o.progress)
    key = jax.random.PRNGKey(o.seed)
    t0 = time.perf_counter()
    mcmc.warmup(key, *args, extra_fields=(), collect_warmup=False, **kwargs)
    t1 = time.perf_counter()
    mcmc.run(mcmc.post_warmup_state.rng_key, *args, extra_fields=("diverging", "accept_prob"), **kwargs)
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    t2 = time.perf_counter()
    extra = mcmc.get_extra_fields(group_by_chain=True)
    info = {"divergences": int(np.sum(extra["diverging"])),
            "accept_prob": float(np.mean(extra["accept_prob"])),
            "step_size": np.atleast_1d(np.asarray(mcmc.last_state.adapt_state.step_size)).tolist()}
    return Posterior({k: np.asarray(v) for k, v in samples.items()}, "numpyro NUTS", t2 - t0, t2 - t1, info)


def log_density(model: Callable, *args, init: dict | None = None, seed: int = 0, **kwargs):
    """``(logdensity(z), z0, to_sites)``: NumPyro's log joint in unconstrained coordinates.

    ``z0`` is a starting point (a dict of unconstrained arrays) and ``to_sites(z)`` maps a
    point back to the model's sites (constrained values and deterministic sites).
    """
    info = initialize_model(jax.random.PRNGKey(seed), model, model_args=args, model_kwargs=kwargs,
                            init_strategy=_init_strategy(init))
    potential = info.potential_fn
    return (lambda z: -potential(z)), info.param_info.z, info.postprocess_fn


def sample_blackjax(model: Callable, *args, options: SamplerOptions | None = None,
                    init: dict | None = None, algorithm=blackjax.nuts, **algorithm_kwargs) -> Posterior:
    """Sample the same log density as `sample_numpyro` with BlackJAX.

    Warmup is BlackJAX's window adaptation (step size and mass matrix, as Stan); the chains
    run vectorised (``vmap``). The model's own keyword arguments are not supported here
    (pass data positionally).

    Args:
        model, args: the NumPyro model and its data.
        options: `SamplerOptions`.
        init: starting values of the latent sites (default: random, as NumPyro's).
        algorithm: ``blackjax.nuts`` (default) or ``blackjax.hmc`` (then give
            ``num_integration_steps=``), or another member of BlackJAX's HMC family.
        algorithm_kwargs: extra parameters of the algorithm.
    """
    o = SamplerOptions() if options is None else options
    logdensity, _, to_sites = log_density(model, *args, init=init, seed=o.seed)
    key = jax.random.PRNGKey(o.seed + 1)
    k_init, k_warm, k_sample = jax.random.split(key, 3)
    # one starting point per chain, drawn as NumPyro draws its own
    starts = [log_density(model, *args, init=init, seed=o.seed + 1000 * (c + 1))[1]
              for c in range(o.num_chains)]
    z0 = jax.tree.map(lambda *zs: jnp.stack(zs), *starts)
    warmup = blackjax.window_adaptation(algorithm, logdensity, is_mass_matrix_diagonal=not o.dense_mass,
                                        target_acceptance_rate=o.target_accept, **algorithm_kwargs)
    name = _algorithm_name(algorithm)
    t0 = time.perf_counter()
    with _status(f"blackjax {name} warmup", o.progress):
        (states, params), _ = jax.block_until_ready(jax.jit(jax.vmap(
            lambda k, z: warmup.run(k, z, num_steps=o.num_warmup)))(
            jax.random.split(k_warm, o.num_chains), z0))
    t1 = time.perf_counter()
    zs, stats = _run_chains(logdensity, algorithm, algorithm_kwargs, states, params, k_sample,
                            o.num_samples, o.progress, name)
    t2 = time.perf_counter()
    sites = jax.vmap(jax.vmap(to_sites))(zs)
    info = {"divergences": int(np.sum(stats[0])), "accept_prob": float(np.mean(stats[1])),
            "step_size": np.atleast_1d(np.asarray(params["step_size"])).tolist()}
    return Posterior({k: np.asarray(v) for k, v in sites.items()}, f"blackjax {name}", t2 - t0, t2 - t1, info)


def _run_chains(logdensity, algorithm, algorithm_kwargs, states, params, key, n, progress, name):
    """Run ``n`` steps of every chain with its adapted parameters; draws (chains, n, ...)."""
    from jax_tqdm import scan_tqdm

    def one_chain(state, p, k):
        # the adapted parameters already carry the algorithm's extra ones (HMC's step count)
        kernel = algorithm(logdensity, **{**algorithm_kwargs, **p})

        def body(s, inp):
            _, kk = inp
            s, info = kernel.step(kk, s)
            return s, (s.position, (info.is_divergent, info.acceptance_rate))

        # a bar from inside the compiled loop: updated by host callbacks every n/20 steps
        if progress:
            body = scan_tqdm(n, desc=f"blackjax {name} sampling")(body)
        _, (pos, stats) = jax.lax.scan(body, state, (jnp.arange(n), jax.random.split(k, n)))
        return pos, stats

    # chains one after the other in one program keeps the bar meaningful and memory small
    keys = jax.random.split(key, jax.tree.leaves(states.position)[0].shape[0])
    run = jax.jit(lambda st, p, k: jax.lax.map(lambda a: one_chain(*a), (st, p, k)))
    return jax.block_until_ready(run(states, params, keys))


def _algorithm_name(algorithm) -> str:
    """``"nuts"`` for ``blackjax.nuts`` etc. (BlackJAX's API objects carry no name)."""
    fn = getattr(algorithm, "differentiable", algorithm)
    module = getattr(fn, "__module__", "") or ""
    return module.rsplit(".", 1)[-1] if module.startswith("blackjax") else type(algorithm).__name__


class _status:
    """A one-line tqdm status for phases that report no steps (e.g. BlackJAX's warmup)."""

    def __init__(self, desc: str, enabled: bool):
        self.desc, self.enabled = desc, enabled

    def __enter__(self):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=1, desc=self.desc, disable=not self.enabled, leave=False)
        return self

    def __exit__(self, *exc):
        self.bar.update(1)
        self.bar.close()
        return False
