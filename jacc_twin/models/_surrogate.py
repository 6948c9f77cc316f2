"""An Equinox surrogate (`jacc.surrogate`) as a simulation model: a trained network standing
for a section of the machine, differentiable by automatic differentiation."""

from __future__ import annotations

import json
from math import prod
from typing import ClassVar, Literal

import jax.numpy as jnp
from pydantic import Field, PrivateAttr

from ._base import Built, SimulationModel
from ._ports import Port

__all__ = ["SurrogateModel"]


class SurrogateModel(SimulationModel):
    """The surrogate saved at ``config_runtime.eqx_pytree_file_path`` (``.eqx`` and its
    ``.json`` header; a relative path resolves against the pipeline file's folder).

    Inputs: scalar ports named as the surrogate's inputs, or ports (scalars, vectors)
    whose values, flattened and concatenated in the order declared, make the surrogate's
    input vector (e.g. one ``beam_moments`` vector). Outputs: the surrogate's output ports
    by name (scalars for shape ``()``, vectors otherwise); by default all of them.
    """

    OUTPUTS: ClassVar = {}  # from the surrogate's header

    type: Literal["surrogate"] = "surrogate"
    inputs: dict[str, Port] = Field(default_factory=dict)
    outputs: dict[str, Port] = Field(default_factory=dict)

    _surrogate: object = PrivateAttr(default=None)

    @property
    def surrogate(self):
        """The loaded `jacc.surrogate.Surrogate` (None before ``setup()``)."""
        return self._surrogate

    def header(self) -> dict:
        """The surrogate's JSON header (ports, widths), read without loading the weights."""
        from jacc.surrogate import header_path

        path = header_path(self.resolve(self.config_runtime.eqx_pytree_file_path))
        if not path.is_file():
            raise ValueError(f"model '{self.name}': surrogate header {str(path)!r} not found "
                             "(a saved surrogate is a .eqx file and a .json header beside it)")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"model '{self.name}': surrogate header {str(path)!r}: {err}") from None

    def _complete_ports(self) -> None:
        if not self.config_runtime.eqx_pytree_file_path:
            raise ValueError(f"model '{self.name}' (surrogate) needs config_runtime.eqx_pytree_file_path")
        head = self.header()
        names = list(head["input_names"])
        ports = {p["name"]: list(p["shape"]) for p in head["output_ports"]}
        if not self.inputs:
            self.inputs.update({n: Port(type="scalar") for n in names})
        if len(self.outputs) <= 1:  # only walltime declared
            self.outputs.update({n: Port(type="scalar" if not s else "vector", shape=s or None)
                                 for n, s in ports.items()})
        for name, port in self.outputs.items():
            if name == "walltime":
                continue
            if name not in ports:
                raise ValueError(f"model '{self.name}': unknown output '{name}'; the surrogate's "
                                 f"outputs are {sorted(ports)}")
            kind = "scalar" if not ports[name] else "vector"
            if port.type != kind:
                raise ValueError(f"model '{self.name}': output '{name}' is a {kind}, declared {port.type}")
            if kind == "vector" and port.shape is None:
                port.shape = ports[name]
        self._check_input_size(names)

    def _check_input_size(self, names) -> None:
        if all(n in self.inputs and self.inputs[n].type == "scalar" for n in names):
            return
        bad = [n for n, p in self.inputs.items() if p.type not in ("scalar", "vector")]
        if bad:
            raise ValueError(f"model '{self.name}': inputs {bad} must be scalars or vectors")
        sizes = [1 if p.type == "scalar" else (prod(p.shape) if p.shape and None not in p.shape else None)
                 for p in self.inputs.values()]
        if None not in sizes and sum(sizes) != len(names):
            raise ValueError(f"model '{self.name}': the inputs {list(self.inputs)} hold {sum(sizes)} values, "
                             f"the surrogate takes {len(names)} ({names})")

    def _check_output(self, name, port) -> None:
        pass  # checked against the surrogate's header in _complete_ports

    def _build(self, fidelity: str) -> Built:
        from jacc.surrogate import load

        sur = load(self.resolve(self.config_runtime.eqx_pytree_file_path))
        by_name = all(n in self.inputs and self.inputs[n].type == "scalar" for n in sur.input_names)
        order = list(sur.input_names) if by_name else list(self.inputs)
        spans, start = {}, 0
        for name, shape in sur.output_ports:
            spans[name] = (start, start + prod(shape), shape)
            start += prod(shape)
        names = [n for n in self.outputs if n != "walltime"]

        def fn(ins):
            vec = jnp.concatenate([jnp.ravel(jnp.asarray(ins[n], dtype=float)) for n in order])
            if vec.shape != (sur.n_in,):
                raise ValueError(f"model '{self.name}': inputs {order} hold {vec.shape[0]} values, "
                                 f"the surrogate takes {sur.n_in}")
            y = sur(vec)
            return {n: y[spans[n][0]:spans[n][1]].reshape(spans[n][2]) for n in names}

        self._surrogate = sur
        return Built(self.jit(fn), {})
