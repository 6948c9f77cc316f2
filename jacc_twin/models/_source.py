"""A particle source: a Gaussian beam from Twiss parameters and emittances, differentiable
with respect to them (the draws are fixed at setup, the beam is a linear map of them)."""

from __future__ import annotations

from typing import ClassVar, Literal

import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from jacc.containers import Envelope

from ._base import Built, SimulationModel
from ._observables import compute, outputs_of, particle_moments
from ._ports import Port

__all__ = ["BeamConfig", "ParticleSource"]

_BEAM_FIELDS = ("betx", "alfx", "bety", "alfy", "emitx_norm", "emity_norm", "sigma_t", "sigma_pt")


class BeamConfig(BaseModel):
    """An uncoupled Gaussian beam at the source.

    Attributes:
        betx, bety: beta functions [m]. alfx, alfy: alpha functions [1].
        emitx_norm, emity_norm: normalised rms emittances [m] (geometric times beta0 gamma0).
        sigma_t: rms of ``t`` [m]. sigma_pt: rms of ``pt`` [1].
        mean: centroid ``(x, px, y, py, t, pt)``.
        seed: seed of the normal draws (NumPy ``default_rng``).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    betx: float = Field(gt=0)
    alfx: float = 0.0
    bety: float = Field(gt=0)
    alfy: float = 0.0
    emitx_norm: float = Field(gt=0)
    emity_norm: float = Field(gt=0)
    sigma_t: float = Field(default=0.0, ge=0)
    sigma_pt: float = Field(default=0.0, ge=0)
    mean: list[float] = Field(default_factory=lambda: [0.0] * 6, min_length=6, max_length=6)
    seed: int = 0


def _plane(z0, z1, beta, alpha, emit):
    # <x x> = emit beta, <x px> = -emit alpha, <px px> = emit (1 + alpha^2) / beta
    a = jnp.sqrt(emit * beta)
    b = jnp.sqrt(emit / beta)
    return a * z0, b * (z1 - alpha * z0)


class ParticleSource(SimulationModel):
    """Particles drawn from `BeamConfig` (``config_beam``); ``config_runtime.particle_shape``
    gives their number, ``config_lattice`` the reference particle (its ``file``'s beam or
    ``reference_particle``).

    Inputs (optional): any of ``betx, alfx, bety, alfy, emitx_norm, emity_norm, sigma_t,
    sigma_pt`` as scalars, overriding ``config_beam``. Outputs: ``particles``, ``envelope``
    (the Gaussian's exact moments), ``reference_particle``, and the observables of the drawn
    particles (``centroid``, ``covariance``, ``beam_sizes``, ``emittances``, ``beam_moments``).
    """

    OUTPUTS: ClassVar = outputs_of({"particles": ("coordinates", [None, 6]), "envelope": ("envelope", None),
                                    "reference_particle": ("reference_particle", None)})

    type: Literal["particle_source"] = "particle_source"
    config_beam: BeamConfig
    inputs: dict[str, Port] = Field(default_factory=dict)
    outputs: dict[str, Port] = Field(default_factory=lambda: {"particles": Port(type="coordinates")})

    def _complete_ports(self) -> None:
        if self.config_lattice is None:
            raise ValueError(f"model '{self.name}' (particle_source) needs config_lattice "
                             "(a file with a beam command, or reference_particle)")
        shape = self.config_runtime.particle_shape
        if shape is None:
            raise ValueError(f"model '{self.name}' (particle_source) needs config_runtime.particle_shape [n, 6]")
        for name, port in self.inputs.items():
            if name not in _BEAM_FIELDS or port.type != "scalar":
                raise ValueError(f"model '{self.name}': input '{name}' must be a scalar among {list(_BEAM_FIELDS)}")
        for port in self.outputs.values():
            if port.type == "coordinates" and port.shape is None:
                port.shape = list(shape)

    def _build(self, fidelity: str) -> Built:
        rp = self.reference_particle()
        cfg = self.config_beam
        z = jnp.asarray(np.random.default_rng(cfg.seed).standard_normal(tuple(self.config_runtime.particle_shape)))
        mean = jnp.asarray(cfg.mean, dtype=float)
        bg = rp.beta0 * rp.gamma0
        names = list(self.outputs)
        defaults = {k: jnp.asarray(getattr(cfg, k), dtype=float) for k in _BEAM_FIELDS if k in self.inputs}
        fixed = {k: getattr(cfg, k) for k in _BEAM_FIELDS}

        def fn(ins):
            b = {**fixed, **{k: ins[k] for k in defaults}}
            ex, ey = b["emitx_norm"] / bg, b["emity_norm"] / bg
            x, px = _plane(z[:, 0], z[:, 1], b["betx"], b["alfx"], ex)
            y, py = _plane(z[:, 2], z[:, 3], b["bety"], b["alfy"], ey)
            parts = jnp.stack([x, px, y, py, b["sigma_t"] * z[:, 4], b["sigma_pt"] * z[:, 5]], axis=1) + mean
            env = Envelope.from_twiss(b["betx"], b["alfx"], ex, b["bety"], b["alfy"], ey,
                                      b["sigma_t"], b["sigma_pt"])
            out = {"particles": parts, "envelope": Envelope(sigma=env.sigma, mean=mean)}
            m, cov, _ = particle_moments(parts, jnp.ones(parts.shape[0], bool))
            out.update(compute(names, m, cov))
            return {k: v for k, v in out.items() if k in names}

        static = {"reference_particle": rp} if "reference_particle" in names else {}
        return Built(self.jit(fn), defaults, static)
