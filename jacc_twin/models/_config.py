"""Configuration of a simulation model: runtime options, the lattice section, shared state."""

from __future__ import annotations

import pathlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jacc.particles import ReferenceParticle

__all__ = ["LatticeConfig", "RuntimeConfig", "SharedState", "resolve_path"]

DiffMode = Literal["ad", "fd", "surrogate", "none"]


class SharedState(BaseModel):
    """State a pipeline shares with all its models.

    Attributes:
        fidelity: ``"high"``: each engine's full model (JACC's `jacc.Xsuite()` preset,
            ImpactX's exact elements); ``"low"``: linear maps everywhere (JACC's
            `jacc.Linear()` for every element with runs fused into one map, ImpactX's
            linear tier). A model's ``config_runtime.fidelity`` overrides it.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    fidelity: Literal["low", "high"] = "high"


class RuntimeConfig(BaseModel):
    """How a model runs.

    Attributes:
        space_charge: include space charge (no engine of this version models it: True is
            refused at setup, naming the model).
        diff_mode: how gradients cross the model: ``"ad"`` (automatic differentiation of
            JAX code: JACC engines, surrogates), ``"fd"`` (a custom VJP from finite
            differences: Xsuite, ImpactX), ``"surrogate"`` (a custom VJP from a surrogate's
            gradient, the surrogate in ``eqx_pytree_file_path``), ``"none"`` (not
            differentiable: a pipeline holding it refuses ``grad_of``).
        use_jit: compile the model's function with ``jax.jit`` (False: run eagerly).
        eqx_pytree_file_path: a `jacc.surrogate` file (``.eqx``, with its ``.json`` header
            beside it): the surrogate model's network, or the surrogate behind
            ``diff_mode="surrogate"``; relative paths resolve against the pipeline file's folder.
        particle_shape: ``[n, 6]``: the number of particles the model expects; its ports
            are checked against it and ``setup()`` compiles for it. None: any.
        diagnostics: record the engine's monitors (JACC: BPM centroids, output
            ``bpm_centroids``).
        fidelity: None (the pipeline's shared fidelity), ``"low"`` or ``"high"``.
        fd_step: relative step of finite-difference VJPs (None: the code's own,
            `jacc.bridges.Stage.default_fd_rel_step`).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    space_charge: bool = False
    diff_mode: DiffMode = "ad"
    use_jit: bool = True
    eqx_pytree_file_path: str | None = None
    particle_shape: list[int] | None = None
    diagnostics: bool = False
    fidelity: Literal["low", "high"] | None = None
    fd_step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self):
        if self.particle_shape is not None and (len(self.particle_shape) != 2 or self.particle_shape[1] != 6
                                                or self.particle_shape[0] < 1):
            raise ValueError(f"particle_shape must be [n, 6] with n >= 1, got {self.particle_shape}")
        if self.diff_mode == "surrogate" and not self.eqx_pytree_file_path:
            raise ValueError("diff_mode='surrogate' needs eqx_pytree_file_path (the surrogate file)")
        return self


class LatticeConfig(BaseModel):
    """The lattice a model simulates: a file, the section of it, knob settings, parameters.

    Attributes:
        file: MAD-X (``.madx``, ``.seq``) or JACC JSON (``.json``) lattice; a relative path
            resolves against the pipeline file's folder.
        sequence: the MAD-X sequence or line to use (None: the file's ``use``).
        start, end: first and last placement of the section, inclusive: a definition name
            (its first placement), ``name:n`` (its n-th placement) or an index; None: the
            lattice's start / end.
        knobs: knob values set when the lattice is loaded.
        params: the model's parameter inputs, differentiable: knob names (``"kq4"``) or
            ``"element.field"`` (``"q4.k1"``, ``"q4:2.k1"``); each becomes a scalar input
            port of that name, defaulting to the lattice's value.
        reference_particle: None: from the file's MAD-X ``beam`` command.
        n_turns: passes through the section (1 for a line).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    file: str | None = None
    sequence: str | None = None
    start: str | int | None = None
    end: str | int | None = None
    knobs: dict[str, float] = Field(default_factory=dict)
    params: list[str] = Field(default_factory=list)
    reference_particle: ReferenceParticle | None = None
    n_turns: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.file is None and self.reference_particle is None:
            raise ValueError("config_lattice needs a lattice file or a reference_particle")
        if len(set(self.params)) != len(self.params):
            raise ValueError(f"config_lattice.params names a parameter twice: {self.params}")
        return self


def resolve_path(path: str, base: pathlib.Path | None) -> pathlib.Path:
    """``path`` as given if absolute, else relative to ``base`` (the pipeline file's folder;
    None: the working directory)."""
    p = pathlib.Path(path).expanduser()
    if p.is_absolute() or base is None:
        return p
    return base / p
