"""Xsuite and ImpactX as simulation models: one pass of the code through a lattice section
(`jacc.bridges.XsuiteStage`, `ImpactXStage`), differentiable through the stages' custom VJP
(finite differences, or a per-particle surrogate)."""

from __future__ import annotations

import warnings
from typing import ClassVar, Literal

import jax.numpy as jnp
from pydantic import Field, PrivateAttr

from jacc.bridges import ImpactXExporterConfig, XsuiteExporterConfig

from ._base import Built
from ._config import RuntimeConfig
from ._jacc import _LatticeModel
from ._observables import compute, outputs_of, particle_moments
from ._ports import Port

__all__ = ["XsuiteModel", "ImpactXModel"]

_OUTPUTS = outputs_of({"particles": ("coordinates", [None, 6]), "alive": ("vector", [None]),
                       "n_alive": ("scalar", None), "reference_particle": ("reference_particle", None)})
_MOMENTS = ("n_alive", "centroid", "covariance", "beam_sizes", "emittances", "beam_moments")


class _CodeModel(_LatticeModel):
    """A code run as a `jacc.bridges.Stage` on the model's lattice section.

    Inputs: ``particles`` ((n, 6) MAD-X coordinates) and the parameters of
    ``config_lattice.params``. Outputs: ``particles`` (lost particles: NaN rows),
    ``alive``, ``n_alive``, ``reference_particle`` and the observables of the beam.
    ``config_runtime.diff_mode``: ``"fd"`` (finite differences of the code, relative step
    ``fd_step``, by default the code's own), ``"surrogate"`` (the stage surrogate in ``eqx_pytree_file_path``) or
    ``"none"``.
    """

    OUTPUTS: ClassVar = _OUTPUTS
    FIXED_INPUTS: ClassVar = {"particles": "coordinates"}
    DIFF_MODES: ClassVar = ("fd", "surrogate", "none")

    inputs: dict[str, Port] = Field(default_factory=lambda: {"particles": Port(type="coordinates")})
    outputs: dict[str, Port] = Field(default_factory=lambda: {"particles": Port(type="coordinates")})
    config_runtime: RuntimeConfig = Field(default_factory=lambda: RuntimeConfig(diff_mode="fd"))

    _stage_obj: object = PrivateAttr(default=None)

    def _complete_ports(self) -> None:
        if "particles" not in self.inputs:
            raise ValueError(f"model '{self.name}' ({self.type}) needs a 'particles' input")
        if "alive" in self.outputs:
            self.outputs["alive"].dtype = "bool"
        super()._complete_ports()

    def _stage(self, fidelity: str, lat, rp):
        raise NotImplementedError

    @property
    def stage(self):
        """The `jacc.bridges.Stage` built by ``setup()`` (None before)."""
        return self._stage_obj

    def _stage_config(self):
        from jacc.bridges import StageConfig

        rt = self.config_runtime
        if rt.diff_mode == "surrogate":
            return StageConfig(vjp="surrogate", surrogate=str(self.resolve(rt.eqx_pytree_file_path)))
        return StageConfig(vjp="fd", fd_rel_step=rt.fd_step)

    def _build(self, fidelity: str) -> Built:
        lat, rp = self.lattice()
        stage = self._stage(fidelity, lat, rp)
        params, names = list(self.config_lattice.params), list(self.outputs)
        defaults = {p: jnp.asarray(v) for p, v in zip(params, stage.initial_values)}

        def fn(ins):
            values = jnp.stack([ins[p] for p in params]) if params else jnp.zeros(0)
            y = stage(values, ins["particles"])
            alive = jnp.all(jnp.isfinite(y), axis=1)
            out = {"particles": y, "alive": alive}
            if any(n in names for n in _MOMENTS):
                mean, cov, n = particle_moments(y, alive)
                out.update(compute(names, mean, cov), n_alive=n)
            return {k: v for k, v in out.items() if k in names}

        self._stage_obj = stage
        return Built(self.jit(fn), defaults, self._static())


class XsuiteModel(_CodeModel):
    """One pass of xtrack through the section (`jacc.bridges.XsuiteStage`).

    Attributes:
        config_export: the `XsuiteExporterConfig` of the exported line (xtrack's defaults,
            which JACC's `jacc.Xsuite()` preset reproduces, when None).
    """

    type: Literal["xsuite"] = "xsuite"
    config_export: XsuiteExporterConfig | None = None

    def _stage(self, fidelity, lat, rp):
        from jacc.bridges import XsuiteStage

        return XsuiteStage(lat, rp, self.config_lattice.params, config=self._stage_config(),
                           exporter_config=self.config_export)


class ImpactXModel(_CodeModel):
    """One pass of ImpactX through the section (`jacc.bridges.ImpactXStage`), no space charge.

    Attributes:
        config_export: the `ImpactXExporterConfig`; None: by fidelity, ImpactX's exact
            elements (``"high"``) or its linear ones (``"low"``).
        fallback: ``"xsuite"``: where ImpactX is not installed, run xtrack instead (with a
            warning) rather than fail.
    """

    type: Literal["impactx"] = "impactx"
    config_export: ImpactXExporterConfig | None = None
    fallback: Literal["xsuite"] | None = None

    def _stage(self, fidelity, lat, rp):
        from jacc.bridges import ImpactXStage, XsuiteStage

        try:
            import impactx  # noqa: F401
        except ImportError as err:
            if self.fallback != "xsuite":
                raise ImportError(f"model '{self.name}' (impactx): ImpactX is not installed "
                                  f"({err}); pip install impactx-noacc, or set fallback='xsuite'") from None
            warnings.warn(f"model '{self.name}': ImpactX is not installed, running xtrack instead",
                          stacklevel=3)
            return XsuiteStage(lat, rp, self.config_lattice.params, config=self._stage_config())
        cfg = self.config_export or ImpactXExporterConfig(model="exact" if fidelity == "high" else "linear")
        return ImpactXStage(lat, rp, self.config_lattice.params, config=self._stage_config(),
                            exporter_config=cfg)
