"""`Pipeline`: simulation models run in order, checked port by port, saved as JSON, and
differentiated end to end.

Values flow by name: each model receives everything that reached it (the pipeline's inputs
and upstream outputs passed through) and takes its declared inputs from it. ``run``
returns the final values, every model's outputs as ``"<model>.<output>"``, the named
losses, ``walltime`` (the whole run [s]) and, with ``grad_of``, the gradients
``"d<loss>/d<input>"``.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from ._connections import connect
from .models import AnyModel, SharedState

__all__ = ["Loss", "LossTerm", "Pipeline"]


class LossTerm(BaseModel):
    """``weight * sum((value[index] - target)^2)`` of one pipeline value.

    Attributes:
        output: a value's name (``"beam_sizes"``, or ``"<model>.<output>"``).
        index: element(s) of a vector value (None: all).
        target: a number or one per selected element. weight: the term's factor.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    output: str
    index: int | list[int] | None = None
    target: float | list[float] = 0.0
    weight: float = 1.0

    def __call__(self, values: dict):
        v = jnp.asarray(values[self.output])
        if self.index is not None:
            v = v[jnp.asarray(self.index)]
        return self.weight * jnp.sum((v - jnp.asarray(self.target, dtype=float)) ** 2)


class Loss(BaseModel):
    """A named scalar loss of a pipeline: the sum of its terms."""

    model_config = ConfigDict(extra="forbid")

    terms: list[LossTerm] = Field(min_length=1)
    description: str = ""

    def __call__(self, values: dict):
        return sum(t(values) for t in self.terms)


class Pipeline(BaseModel):
    """Simulation models in order (see the module docstring for how values flow).

    Attributes:
        name, description, version: free text.
        shared: `SharedState` handed to every model (the global ``fidelity``).
        models: the models, in order; each a subclass of `SimulationModel` named by its
            ``type`` in JSON.
        inputs: default values of the pipeline's inputs (numbers or nested lists).
        losses: named scalar losses computed from the values after the last model.

    Build from a file with `Pipeline.from_file` (relative lattice and surrogate paths
    resolve against its folder), or ``Pipeline.model_validate_json(text, context={"base_dir":
    folder})``. Building checks every connection (type, dtype, coordinate system, reference
    particle, shape) and raises ``ValueError`` naming both ports of the first that does
    not fit.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "pipeline"
    description: str = ""
    version: str = "1.0"
    shared: SharedState = Field(default_factory=SharedState)
    models: list[AnyModel] = Field(min_length=1)
    inputs: dict[str, float | list] = Field(default_factory=dict)
    losses: dict[str, Loss] = Field(default_factory=dict)

    _external: dict = PrivateAttr(default_factory=dict)
    _visible: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo):
        base = (info.context or {}).get("base_dir")
        names = [m.name for m in self.models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"pipeline '{self.name}': model names must be unique, repeated: {dup}")
        for m in self.models:
            if base is not None and m._base_dir is None:
                m._base_dir = pathlib.Path(base)
        self._visible, self._external = connect(self.models)
        produced = set(self._visible) | {f"{m.name}.{o}" for m in self.models for o in m.outputs}
        for loss, spec in self.losses.items():
            for t in spec.terms:
                if t.output not in produced:
                    raise ValueError(f"pipeline '{self.name}': loss '{loss}' reads '{t.output}', "
                                     f"which no model outputs; values: {sorted(produced)}")
        unknown = sorted(set(self.inputs) - set(self._external))
        if unknown:
            raise ValueError(f"pipeline '{self.name}': inputs {unknown} feed no model; "
                             f"pipeline inputs: {sorted(self._external)}")
        return self

    # ------------------------------------------------------------------ files
    @classmethod
    def from_file(cls, path) -> "Pipeline":
        """The pipeline in JSON file ``path`` (relative paths inside resolve against its folder)."""
        path = pathlib.Path(path)
        return cls.model_validate_json(path.read_text(), context={"base_dir": path.resolve().parent})

    def to_file(self, path) -> None:
        """Write the pipeline as JSON (paths inside are kept as written)."""
        pathlib.Path(path).write_text(self.model_dump_json(indent=1) + "\n")

    # ------------------------------------------------------------------ introspection
    @property
    def external_inputs(self) -> dict[str, list[str]]:
        """Pipeline inputs (values no model upstream produces) -> the ports they feed."""
        return {k: [s.label for s in v] for k, v in self._external.items()}

    def input_defaults(self) -> dict[str, Any]:
        """The value each pipeline input takes when ``run`` is not given it: the pipeline's
        ``inputs``, else the port's default, else the model's (a lattice parameter's value:
        the models are set up); inputs without any are left out."""
        out = {}
        for name in self._external:
            try:
                out[name] = self._input_value({}, name)
            except ValueError:
                pass
        return out

    def model(self, name: str):
        """The model called ``name``."""
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"pipeline '{self.name}' has no model '{name}'; models: {[m.name for m in self.models]}")

    @property
    def differentiable(self) -> bool:
        """Every model is differentiable (by AD or a custom VJP)."""
        return all(m.differentiable for m in self.models)

    def setup(self) -> "Pipeline":
        """Build every model's engine (once; compiled functions are kept); returns self."""
        for m in self.models:
            m.setup(self.shared)
        return self

    # ------------------------------------------------------------------ running
    def run(self, inputs: dict[str, Any] | None = None, *, grad_of: str | None = None,
            wrt: list[str] | None = None) -> dict[str, Any]:
        """Run every model in order on ``inputs`` (over the pipeline's default ``inputs``).

        With ``grad_of`` (a loss of ``losses`` or any scalar value) the result also holds
        ``"d<grad_of>/d<name>"`` for each name of ``wrt`` (pipeline inputs; values not
        given default to the input ports' defaults, e.g. the lattice's knob values).
        """
        self.setup()
        values = {k: np.asarray(v, dtype=float) for k, v in self.inputs.items()}
        values.update(inputs or {})
        t0 = time.perf_counter()
        if grad_of is None:
            if wrt:
                raise ValueError("run: wrt is given without grad_of")
            out = self._forward(values)
        else:
            out = self._gradient(values, grad_of, list(wrt or []))
        out["walltime"] = np.float64(time.perf_counter() - t0)
        return out

    def _forward(self, values: dict, ad: bool = False) -> dict:
        named = {}
        for m in self.models:
            values = m.run(values, ad=ad)
            named.update({f"{m.name}.{k}": values[k] for k in m.outputs})
        out = {**values, **named}
        for name, loss in self.losses.items():
            out[name] = loss(out)
        return out

    def _gradient(self, values: dict, grad_of: str, wrt: list[str]) -> dict:
        if not wrt:
            raise ValueError("run: grad_of needs wrt, the pipeline inputs to differentiate by")
        stiff = [f"{m.name} ({m.type})" for m in self.models if not m.differentiable]
        if stiff:
            raise ValueError(f"pipeline '{self.name}': cannot differentiate through {stiff} "
                             "(config_runtime.diff_mode is 'none')")
        x = {name: jnp.asarray(self._input_value(values, name), dtype=float) for name in wrt}
        static: dict = {}

        def f(x):
            out = self._forward({**values, **x}, ad=True)
            if grad_of not in out:
                raise ValueError(f"run: grad_of '{grad_of}' is not a value of the pipeline; "
                                 f"values: {sorted(out)}")
            loss = out[grad_of]
            if jnp.shape(loss) != ():
                raise ValueError(f"run: grad_of '{grad_of}' must be a scalar, has shape {jnp.shape(loss)}")
            static.update({k: v for k, v in out.items() if not isinstance(v, jax.core.Tracer)})
            return loss, {k: v for k, v in out.items() if isinstance(v, jax.core.Tracer)}

        (_, traced), grads = jax.value_and_grad(f, has_aux=True)(x)
        out = {**static, **traced}
        out.update({f"d{grad_of}/d{name}": g for name, g in grads.items()})
        return out

    def _input_value(self, values: dict, name: str):
        if name in values:
            return values[name]
        if name in self.inputs:
            return np.asarray(self.inputs[name], dtype=float)
        if name not in self._external:
            raise ValueError(f"run: wrt '{name}' is not a pipeline input; inputs: {sorted(self._external)}")
        model_name, port_name = self._external[name][0].label.rsplit(".", 1)
        m = self.model(model_name)
        port = m.inputs[port_name]
        if port.default is not None:
            return port.default
        defaults = m.setup(self.shared)._built[1].defaults
        if port_name not in defaults:
            raise ValueError(f"run: wrt '{name}' has no value: give it in inputs")
        return defaults[port_name]
