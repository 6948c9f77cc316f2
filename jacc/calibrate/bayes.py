"""Bayesian LOCO: the LOCO measurement model as a NumPyro model, sampled with NUTS or BlackJAX.

Priors are Gaussian: relative gradient errors ``~ N(0, quad_rel^2)``, BPM gain deviations,
rolls and corrector gain deviations likewise; the likelihood is Gaussian with the
measurement's noise. The priors on the gains fix the gain degeneracy of LOCO (see
`jacc.calibrate.loco`): along that direction the posterior is as wide as the prior allows.
Each group is sampled in standardised form (``z ~ N(0, 1)``, value = rms * z) so that all
coordinates have comparable scales; the physical values are deterministic sites with the
group names of `jacc.calibrate.loco.GROUPS`.
"""

from __future__ import annotations

import dataclasses
import functools

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from jacc.lattice import Lattice

from .errors import ErrorSpec, Measurement
from .loco import GROUPS, LocoModel, LocoResult
from .orm import OrmLayout
from .sampling import Posterior, SamplerOptions, sample_blackjax, sample_blackjax_datasets, sample_numpyro


@dataclasses.dataclass(frozen=True)
class LocoPriors:
    """Prior rms of each parameter group; 0 keeps a group at its ideal value (not sampled).

    Attributes:
        quad_rel: relative gradient errors [1].
        bpm_gain: BPM gain deviations [1]; bpm_roll: BPM rolls [rad].
        corrector_gain: corrector gain deviations [1].
    """

    quad_rel: float = 0.01
    bpm_gain: float = 0.0
    bpm_roll: float = 0.0
    corrector_gain: float = 0.0

    @classmethod
    def from_errors(cls, spec: ErrorSpec) -> "LocoPriors":
        """Priors equal to the rms values errors were drawn with (a calibrated prior)."""
        return cls(spec.quad_rel, spec.bpm_gain, spec.bpm_roll, spec.corrector_gain)

    def rms(self, group: str) -> float:
        return {"quad_errors": self.quad_rel, "bpm_gain_x": self.bpm_gain, "bpm_gain_y": self.bpm_gain,
                "bpm_roll": self.bpm_roll, "corrector_gain_h": self.corrector_gain,
                "corrector_gain_v": self.corrector_gain}[group]


@dataclasses.dataclass(frozen=True)
class Laplace:
    """Maximum a posteriori point and the Gaussian (Laplace) approximation around it.

    Attributes:
        z: the MAP in the model's standardised coordinates (site name -> array).
        params: the MAP as group values (`jacc.calibrate.loco.GROUPS`).
        cov: covariance of the flattened standardised coordinates (``ravel_pytree`` order):
            the inverse Gauss-Newton Hessian of the negative log posterior; a good inverse
            mass matrix for HMC.
        std: one-sigma widths per group (physical units).
        solve: the least-squares solve that found the MAP.
    """

    z: dict
    params: dict
    cov: np.ndarray
    std: dict
    solve: object


class BayesianLoco:
    """Posterior of the LOCO parameters given an ORM measurement.

    Args:
        lat, rp: design lattice and reference particle.
        layout: BPMs and correctors of the measurements.
        quads: the gradients with errors (see `jacc.calibrate.loco.LocoModel`).
        priors: `LocoPriors`.
        dispersion: use the measured dispersion when the measurement has it.
        model: engine preset.
    """

    def __init__(self, lat: Lattice, rp, layout: OrmLayout, *, quads=None,
                 priors: LocoPriors | None = None, dispersion: bool = True, model=None,
                 loco_model: LocoModel | None = None):
        self.priors = LocoPriors() if priors is None else priors
        self.model = LocoModel(lat, rp, layout, quads=quads, model=model) if loco_model is None else loco_model
        self.dispersion = dispersion
        self.sites = [g for g in GROUPS if self.priors.rms(g) > 0 and self.model.sizes[g] > 0]
        if not self.sites:
            raise ValueError("LocoPriors: every prior rms is 0, nothing to infer")

    def numpyro_model(self, orm, dispersion, sigma_orm, sigma_disp):
        """The NumPyro model: priors, the LOCO prediction, Gaussian likelihood."""
        p = {}
        for g in self.sites:
            z = numpyro.sample(f"{g}_z", dist.Normal(0.0, 1.0).expand([self.model.sizes[g]]).to_event(1))
            p[g] = numpyro.deterministic(g, self.priors.rms(g) * z)
        orm_m, disp_m = self.model.predict(p, dispersion=dispersion is not None)
        numpyro.sample("orm", dist.Normal(orm_m, sigma_orm).to_event(2), obs=orm)
        if dispersion is not None:
            numpyro.sample("dispersion", dist.Normal(disp_m, sigma_disp).to_event(1), obs=dispersion)

    def data(self, m: Measurement) -> tuple:
        """Model arguments for a measurement (its noise must be known: sigma > 0)."""
        if m.layout != self.model.layout:
            raise ValueError("BayesianLoco: the measurement's BPMs/correctors differ from this model's layout")
        if not m.orm_sigma > 0:
            raise ValueError("BayesianLoco: the likelihood needs the ORM noise rms (orm_sigma > 0)")
        use_disp = self.dispersion and m.dispersion is not None
        if use_disp and not m.dispersion_sigma > 0:
            raise ValueError("BayesianLoco: the dispersion noise rms must be > 0 to use the dispersion")
        return (jnp.asarray(m.orm), jnp.asarray(m.dispersion) if use_disp else None,
                jnp.asarray(m.orm_sigma), jnp.asarray(m.dispersion_sigma if use_disp else 1.0))

    def _residual(self, zf, data):
        """Standardised residuals whose half squared norm is the negative log posterior."""
        orm, disp, s_orm, s_disp = data
        z = self._unravel(zf)
        p = {g: self.priors.rms(g) * z[f"{g}_z"] for g in self.sites}
        orm_m, disp_m = self.model.predict(p, dispersion=disp is not None)
        r = [((orm_m - orm) / s_orm).ravel()]
        if disp is not None:
            r.append((disp_m - disp) / s_disp)
        r.append(zf)
        return jnp.concatenate(r)

    @functools.cached_property
    def _unravel(self):
        from jax.flatten_util import ravel_pytree

        return ravel_pytree({f"{g}_z": jnp.zeros(self.model.sizes[g]) for g in self.sites})[1]

    def laplace(self, m: Measurement, *, progress: bool = False, max_steps: int = 50) -> Laplace:
        """MAP by Levenberg-Marquardt and the Laplace approximation of the posterior."""
        from jax.flatten_util import ravel_pytree

        from jacc.match._solve import solve

        data = self.data(m)
        z0, _ = ravel_pytree({f"{g}_z": jnp.zeros(self.model.sizes[g]) for g in self.sites})
        cache = self.__dict__.setdefault("_laplace_cache", {})
        res = solve(self._residual, z0, data, max_steps=max_steps, progress=progress,
                    desc="Bayesian LOCO: MAP", jitted=cache)
        if "jac" not in cache:
            cache["jac"] = jax.jit(jax.jacfwd(self._residual))
        jac = np.asarray(cache["jac"](jnp.asarray(res.y), data))
        cov = np.linalg.inv(jac.T @ jac)
        z = {k: np.asarray(v) for k, v in self._unravel(jnp.asarray(res.y)).items()}
        sd = self._unravel(jnp.sqrt(jnp.diag(jnp.asarray(cov))))
        params = {g: self.priors.rms(g) * z[f"{g}_z"] for g in self.sites}
        std = {g: self.priors.rms(g) * np.asarray(sd[f"{g}_z"]) for g in self.sites}
        return Laplace(z, params, cov, std, res)

    def init_from(self, fit: LocoResult | dict) -> dict:
        """Starting values (standardised sites) from a LOCO fit or from group values."""
        params = fit.params if isinstance(fit, LocoResult) else fit
        return {f"{g}_z": jnp.asarray(params[g]) / self.priors.rms(g) for g in self.sites if g in params}

    def _start(self, init):
        """``(init sites, inverse mass matrix)`` from a `Laplace`, a `LocoResult`, values or None."""
        if init is None:
            return None, None
        if isinstance(init, Laplace):
            return {k: jnp.asarray(v) for k, v in init.z.items()}, init.cov
        return self.init_from(init), None

    def sample_numpyro(self, m: Measurement, options: SamplerOptions | None = None, *,
                       init: Laplace | LocoResult | dict | None = None, **kwargs) -> Posterior:
        """NumPyro NUTS (see `jacc.calibrate.sampling.sample_numpyro`).

        ``init``: a `Laplace` (start at the MAP, its covariance as the mass matrix), a LOCO
        fit or group values (start there), or None (random start).
        """
        z, imm = self._start(init)
        return sample_numpyro(self.numpyro_model, *self.data(m), options=options, init=z,
                              inverse_mass_matrix=imm, **kwargs)

    def sample_blackjax(self, m: Measurement, options: SamplerOptions | None = None, *,
                        init: Laplace | LocoResult | dict | None = None, algorithm=blackjax.nuts,
                        **algorithm_kwargs) -> Posterior:
        """BlackJAX NUTS or HMC on the same log density (see `jacc.calibrate.sampling.sample_blackjax`)."""
        z, imm = self._start(init)
        return sample_blackjax(self.numpyro_model, *self.data(m), options=options, init=z,
                               inverse_mass_matrix=imm, algorithm=algorithm, **algorithm_kwargs)

    def sample_blackjax_many(self, measurements: list, options: SamplerOptions | None = None, *,
                             inits: list | None = None, algorithm=blackjax.nuts, vectorize: bool = False,
                             **algorithm_kwargs) -> list:
        """BlackJAX on several measurements with one compiled program (one `Posterior` each)."""
        starts = [self._start(i) for i in inits] if inits is not None else None
        return sample_blackjax_datasets(
            self.numpyro_model, [self.data(m) for m in measurements], options=options,
            inits=None if starts is None else [z for z, _ in starts],
            inverse_mass_matrices=None if starts is None or starts[0][1] is None else [c for _, c in starts],
            algorithm=algorithm, vectorize=vectorize, **algorithm_kwargs)

    def truth(self, m: Measurement) -> dict:
        """True values of the sampled groups of a simulated measurement (gain deviations)."""
        t = m.truth
        if t is None:
            raise ValueError("the measurement carries no truth (not simulated)")
        values = {"quad_errors": t.quad_rel, "bpm_gain_x": t.bpm_gain_x - 1, "bpm_gain_y": t.bpm_gain_y - 1,
                  "bpm_roll": t.bpm_roll, "corrector_gain_h": t.corrector_gain_h - 1,
                  "corrector_gain_v": t.corrector_gain_v - 1}
        return {g: np.asarray(values[g]) for g in self.sites}
