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
        adapt_mass_matrix: adapt the mass matrix during warmup; False keeps the given
            ``inverse_mass_matrix`` (e.g. a Laplace approximation) and adapts the step size only.
        progress: show progress bars.
    """

    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    seed: int = 0
    target_accept: float = 0.8
    dense_mass: bool = False
    adapt_mass_matrix: bool = True
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
        info: sampler statistics (divergences, step size, mean acceptance...).
    """

    samples: dict
    sampler: str
    time_s: float
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


def initial_points(model: Callable, *args, init: dict | None = None, num_chains: int = 1,
                   seed: int = 0, jitter: float = 0.1, **kwargs) -> dict:
    """Starting points of ``num_chains`` chains in NumPyro's unconstrained coordinates.

    Without ``init``: independent uniform draws in (-2, 2) (NumPyro's ``init_to_uniform``).
    With ``init`` (site values, e.g. a least-squares fit): that point plus Gaussian jitter
    of ``jitter`` (unconstrained units), so that the chains do not start identical and
    R-hat can tell whether they forget where they started.
    """
    keys = jax.random.split(jax.random.PRNGKey(seed), num_chains + 1)
    info = initialize_model(keys[0], model, model_args=args, model_kwargs=kwargs,
                            init_strategy=_init_strategy(init))
    z = info.param_info.z
    leaves, tree = jax.tree.flatten(z)
    out = []
    for i, leaf in enumerate(leaves):
        k = jax.random.fold_in(keys[1], i)
        shape = (num_chains,) + jnp.shape(leaf)
        if init is None:
            out.append(jax.random.uniform(k, shape, minval=-2.0, maxval=2.0))
        else:
            out.append(leaf[None] + jitter * jax.random.normal(k, shape))
    return jax.tree.unflatten(tree, out)


def sample_numpyro(model: Callable, *args, options: SamplerOptions | None = None,
                   init: dict | None = None, inverse_mass_matrix=None, chain_method: str = "sequential",
                   **kwargs) -> Posterior:
    """Sample ``model(*args, **kwargs)`` with NumPyro's NUTS.

    Args:
        model: a NumPyro model.
        options: `SamplerOptions`.
        init: starting values of the latent sites (e.g. a least-squares fit), see
            `initial_points`; default: random points within (-2, 2) in unconstrained space.
        inverse_mass_matrix: starting inverse mass matrix over the unconstrained coordinates
            flattened as ``jax.flatten_util.ravel_pytree`` orders them (sites by name):
            (d,) diagonal or (d, d) dense (then ``dense_mass`` is implied).
        chain_method: ``"sequential"`` (one program, chains one after the other),
            ``"vectorized"`` (chains in lockstep) or ``"parallel"`` (one device per chain).
    """
    o = SamplerOptions() if options is None else options
    dense = o.dense_mass
    if inverse_mass_matrix is not None:
        inverse_mass_matrix = jnp.asarray(inverse_mass_matrix)
        dense = inverse_mass_matrix.ndim == 2
    elif not o.adapt_mass_matrix:
        raise ValueError("SamplerOptions(adapt_mass_matrix=False) needs an inverse_mass_matrix")
    kernel = NUTS(model, target_accept_prob=o.target_accept, dense_mass=dense,
                  inverse_mass_matrix=inverse_mass_matrix, adapt_mass_matrix=o.adapt_mass_matrix)
    mcmc = MCMC(kernel, num_warmup=o.num_warmup, num_samples=o.num_samples, num_chains=o.num_chains,
                chain_method=chain_method, progress_bar=o.progress)
    key = jax.random.PRNGKey(o.seed)
    z0 = initial_points(model, *args, init=init, num_chains=o.num_chains, seed=o.seed, **kwargs)
    if o.num_chains == 1:
        z0 = jax.tree.map(lambda a: a[0], z0)
    t0 = time.perf_counter()
    # warmup and sampling in one run: one compiled program
    mcmc.run(key, *args, extra_fields=("diverging", "accept_prob"), init_params=z0, **kwargs)
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    t2 = time.perf_counter()
    extra = mcmc.get_extra_fields(group_by_chain=True)
    info = {"divergences": int(np.sum(extra["diverging"])),
            "accept_prob": float(np.mean(extra["accept_prob"])),
            "step_size": np.atleast_1d(np.asarray(mcmc.last_state.adapt_state.step_size)).tolist()}
    return Posterior({k: np.asarray(v) for k, v in samples.items()}, "numpyro NUTS", t2 - t0, info)


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
                    init: dict | None = None, inverse_mass_matrix=None, algorithm=blackjax.nuts,
                    **algorithm_kwargs) -> Posterior:
    """Sample the same log density as `sample_numpyro` with BlackJAX.

    Warmup is BlackJAX's window adaptation (step size and mass matrix, as Stan), run for
    every chain at once (``vmap``); warmup and sampling are one compiled program. The
    model's own keyword arguments are not supported here (pass data positionally).

    Args:
        model, args: the NumPyro model and its data.
        options: `SamplerOptions`.
        init: starting values of the latent sites (default: random, as NumPyro's).
        inverse_mass_matrix: as for `sample_numpyro`.
        algorithm: ``blackjax.nuts`` (default) or ``blackjax.hmc`` (then give
            ``num_integration_steps=``), or another member of BlackJAX's HMC family.
        algorithm_kwargs: extra parameters of the algorithm.
    """
    return sample_blackjax_datasets(
        model, [args], options=options, inits=None if init is None else [init],
        inverse_mass_matrices=None if inverse_mass_matrix is None else [inverse_mass_matrix],
        algorithm=algorithm, **algorithm_kwargs)[0]


def sample_blackjax_datasets(model: Callable, datasets: list[tuple], *, options: SamplerOptions | None = None,
                             inits: list[dict] | None = None, inverse_mass_matrices: list | None = None,
                             algorithm=blackjax.nuts, vectorize: bool = False,
                             **algorithm_kwargs) -> list[Posterior]:
    """`sample_blackjax` for several datasets of the same shapes with one compiled program.

    Each dataset gets its own chains, its own adaptation and its own `Posterior`.
    ``vectorize=False`` (default) runs the datasets one after the other; True runs them in
    lockstep under ``vmap`` (NUTS then waits for the longest trajectory of all chains at
    each step: worth it on accelerators, rarely on a CPU), and ``time_s`` of each is the total
    divided by the number of datasets.
    """
    o = SamplerOptions() if options is None else options
    n_sets = len(datasets)
    if n_sets == 0:
        raise ValueError("sample_blackjax_datasets: no dataset")
    if inits is not None and len(inits) != n_sets:
        raise ValueError(f"sample_blackjax_datasets: {len(inits)} inits for {n_sets} datasets")
    if inverse_mass_matrices is not None and len(inverse_mass_matrices) != n_sets:
        raise ValueError(f"sample_blackjax_datasets: {len(inverse_mass_matrices)} mass matrices for "
                         f"{n_sets} datasets")
    if inverse_mass_matrices is None and not o.adapt_mass_matrix:
        raise ValueError("SamplerOptions(adapt_mass_matrix=False) needs inverse mass matrices")
    info0 = initialize_model(jax.random.PRNGKey(o.seed), model, model_args=datasets[0], dynamic_args=True)
    potential_of, to_sites_of = info0.potential_fn, info0.postprocess_fn
    # the same starting points as sample_numpyro with the same options (dataset 0's seed)
    z0 = [initial_points(model, *a, init=None if inits is None else inits[i], num_chains=o.num_chains,
                         seed=o.seed + i) for i, a in enumerate(datasets)]
    z0 = jax.tree.map(lambda *zs: jnp.stack(zs), *z0)
    data = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *datasets)
    keys = jax.random.split(jax.random.PRNGKey(o.seed + 1), n_sets)
    name = _algorithm_name(algorithm)
    progress = o.progress and n_sets == 1

    if inverse_mass_matrices is None:
        imm = None
        diagonal = not o.dense_mass
    else:
        imm = jnp.stack([jnp.asarray(m) for m in inverse_mass_matrices])
        diagonal = imm.ndim == 2

    def run(args, z, key, inv_mass):
        def logdensity(zz):
            return -potential_of(*args)(zz)

        extra = {}
        if inv_mass is not None:
            extra["initial_inverse_mass_matrix"] = inv_mass
            if not o.adapt_mass_matrix:
                # an overwhelming pseudo-count on the previous matrix: BlackJAX's documented
                # way to keep it through the windows while the step size adapts
                extra["imm_shrinkage_to_previous"] = 1e12
        warmup = blackjax.window_adaptation(algorithm, logdensity, is_mass_matrix_diagonal=diagonal,
                                            target_acceptance_rate=o.target_accept, **extra,
                                            **algorithm_kwargs)
        k_warm, k_sample = jax.random.split(key)
        (states, params), _ = jax.vmap(lambda k, zz: warmup.run(k, zz, num_steps=o.num_warmup))(
            jax.random.split(k_warm, o.num_chains), z)
        zs, stats = _run_chains(logdensity, algorithm, algorithm_kwargs, states, params, k_sample,
                                o.num_samples, progress, name)
        sites = jax.vmap(jax.vmap(to_sites_of(*args)))(zs)
        return sites, stats, params["step_size"]

    t0 = time.perf_counter()
    out = []
    if vectorize:
        with _status(f"blackjax {name}: warmup ({o.num_warmup}) and sampling ({o.num_samples}), "
                     f"{o.num_chains} chains x {n_sets} datasets", o.progress and not progress):
            sites, stats, steps = jax.block_until_ready(jax.jit(jax.vmap(run))(data, z0, keys, imm))
        times = [(time.perf_counter() - t0) / n_sets] * n_sets
    else:
        prog = jax.jit(run)
        parts, times = [], []
        bar = _bar(n_sets, f"blackjax {name}: datasets", o.progress and n_sets > 1)
        for i in range(n_sets):
            t1 = time.perf_counter()
            pick = lambda x: None if x is None else jax.tree.map(lambda a: a[i], x)  # noqa: E731
            parts.append(jax.block_until_ready(prog(pick(data), pick(z0), keys[i], pick(imm))))
            times.append(time.perf_counter() - t1)
            bar.update(1)
        bar.close()
        sites, stats, steps = jax.tree.map(lambda *xs: jnp.stack(xs), *parts)
    for i in range(n_sets):
        info = {"divergences": int(np.sum(stats[0][i])), "accept_prob": float(np.mean(stats[1][i])),
                "step_size": np.atleast_1d(np.asarray(steps[i])).tolist()}
        out.append(Posterior({k: np.asarray(v[i]) for k, v in sites.items()}, f"blackjax {name}", times[i], info))
    return out


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

    # chains in lockstep: each step's work is small, so a batch of chains costs little more
    # than one (the bar's step counter is not batched: it advances once per step)
    keys = jax.random.split(key, jax.tree.leaves(states.position)[0].shape[0])
    return jax.vmap(one_chain)(states, params, keys)


def _algorithm_name(algorithm) -> str:
    """``"nuts"`` for ``blackjax.nuts`` etc. (BlackJAX's API objects carry no name)."""
    fn = getattr(algorithm, "differentiable", algorithm)
    module = getattr(fn, "__module__", "") or ""
    return module.rsplit(".", 1)[-1] if module.startswith("blackjax") else type(algorithm).__name__


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


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
