"""`SimulationModel`: the contract every engine of the twin implements (Pydantic).

A model declares typed input and output ports, how it treats inputs it does not declare,
its runtime options and its lattice. ``setup()`` builds the engine once (compiled
functions are kept); ``run(values)`` takes a dict of named values and returns the outputs.
Subclasses implement ``_build(fidelity)``, returning the pure function of the declared
inputs that computes the declared outputs, and the defaults of their inputs.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any, Callable, ClassVar, Literal, NamedTuple

import jax
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from ._config import LatticeConfig, RuntimeConfig, SharedState, resolve_path
from ._frames import from_madx, to_madx
from ._ports import WITH_REFERENCE, Port, shapes_compatible

__all__ = ["SimulationModel", "Built"]


class Built(NamedTuple):
    """What ``_build`` returns: the engine's pure function and the defaults of its inputs.

    ``fn(inputs: dict) -> dict``: MAD-X phase space in and out; jitted unless
    ``use_jit=False``. ``defaults``: input values used when nobody provides them (the
    lattice's parameter values), in the engine's units. ``static``: outputs that are not
    arrays (the reference particle), the same for every call. ``fn_ad``: the same function
    in a form quicker to differentiate (compile), used when the inputs are being
    differentiated (JAX tracers); None: ``fn``.
    """

    fn: Callable[[dict], dict]
    defaults: dict
    static: dict = {}
    fn_ad: Callable[[dict], dict] | None = None


class SimulationModel(BaseModel):
    """A simulation engine with typed inputs and outputs (one subclass per engine).

    Attributes:
        type: the engine (the discriminator of a pipeline's JSON).
        name: unique within a pipeline; errors name ``name.port``.
        description, version: free text.
        inputs, outputs: `Port` by name. Every model also outputs ``walltime`` [s] (the
            engine's time for the call), added when not declared.
        extra_inputs_allowed: accept values whose names are not declared inputs (a
            pipeline hands each model everything upstream produced); False refuses them.
        extra_inputs_behavior: what happens to accepted extra inputs: ``passthrough``
            (returned unchanged beside the outputs, so later models see them), ``ignore``
            (dropped) or ``error`` (refused, as with ``extra_inputs_allowed=False``).
        config_runtime: `RuntimeConfig`.
        config_lattice: `LatticeConfig` (None for models without a lattice).
    """

    model_config = ConfigDict(extra="forbid")

    # what a subclass computes: output name -> (type, shape or None); and its diff modes
    OUTPUTS: ClassVar[dict[str, tuple[str, list | None]]] = {}
    DIFF_MODES: ClassVar[tuple[str, ...]] = ("ad", "none")

    type: str
    name: str = Field(min_length=1)
    description: str = ""
    version: str = "1.0"
    inputs: dict[str, Port] = Field(default_factory=dict)
    outputs: dict[str, Port] = Field(default_factory=dict)
    extra_inputs_allowed: bool = True
    extra_inputs_behavior: Literal["passthrough", "ignore", "error"] = "passthrough"
    config_runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    config_lattice: LatticeConfig | None = None

    _base_dir: pathlib.Path | None = PrivateAttr(default=None)
    _built: tuple | None = PrivateAttr(default=None)  # (fidelity, Built)
    _loaded: tuple | None = PrivateAttr(default=None)  # (lattice, reference particle)
    _shared: SharedState = PrivateAttr(default_factory=SharedState)

    @model_validator(mode="after")
    def _complete(self, info: ValidationInfo):
        base = (info.context or {}).get("base_dir")
        if base is not None:
            self._base_dir = pathlib.Path(base)
        if self.config_runtime.diff_mode not in self.DIFF_MODES:
            raise ValueError(f"model '{self.name}' ({self.type}): config_runtime.diff_mode must be one "
                             f"of {list(self.DIFF_MODES)}, got {self.config_runtime.diff_mode!r}")
        self._check_files()
        self.outputs.setdefault("walltime", Port(type="scalar", unit="s",
                                                 description="engine time of the call"))
        self._complete_ports()
        for name, port in self.outputs.items():
            self._check_output(name, port)
        return self

    def _check_files(self) -> None:
        files = {"config_runtime.eqx_pytree_file_path": self.config_runtime.eqx_pytree_file_path,
                 "config_lattice.file": None if self.config_lattice is None else self.config_lattice.file}
        for what, path in files.items():
            if path is not None and not self.resolve(path).is_file():
                where = "" if pathlib.Path(path).is_absolute() else \
                    f", relative to {self._base_dir or pathlib.Path.cwd()}"
                raise ValueError(f"model '{self.name}': {what} {path!r}: no such file{where}")

    def resolve(self, path: str) -> pathlib.Path:
        """A path of the model's configuration, relative ones against the pipeline's folder."""
        return resolve_path(path, self._base_dir)

    # ------------------------------------------------------------------ subclass hooks
    def _complete_ports(self) -> None:
        """Add the ports the configuration implies (parameter inputs) and check inputs."""

    def _build(self, fidelity: str) -> Built:
        raise NotImplementedError

    def _check_output(self, name: str, port: Port) -> None:
        if name == "walltime":
            if port.type != "scalar":
                raise ValueError(f"model '{self.name}': output 'walltime' is a scalar [s]")
            return
        if name not in self.OUTPUTS:
            raise ValueError(f"model '{self.name}' ({self.type}): unknown output '{name}'; "
                             f"this engine computes {sorted(self.OUTPUTS)} and 'walltime'")
        kind, shape = self.OUTPUTS[name]
        if port.type != kind:
            raise ValueError(f"model '{self.name}': output '{name}' is a {kind}, declared {port.type}")
        if shape is not None and not shapes_compatible(port.shape, shape):
            raise ValueError(f"model '{self.name}': output '{name}' has shape {shape}, declared {port.shape}")
        if port.shape is None and shape is not None:
            port.shape = list(shape)

    # ------------------------------------------------------------------ lattice
    def lattice(self):
        """``(lattice section, reference particle)`` of ``config_lattice`` (loaded once)."""
        if self._loaded is None:
            if self.config_lattice is None:
                self._loaded = (None, None)
            else:
                from ._lattice import load_lattice

                self._loaded = load_lattice(self.config_lattice, self._base_dir, f"model '{self.name}'")
        return self._loaded

    def reference_particle(self):
        """The model's reference particle (None when it has none)."""
        return self.lattice()[1]

    def port_reference(self, port: Port):
        """The reference particle ``port``'s values are relative to (None: not applicable)."""
        if port.type not in WITH_REFERENCE:
            return None
        return port.reference_particle if port.reference_particle is not None else self.reference_particle()

    @property
    def differentiable(self) -> bool:
        """Gradients cross this model (by AD or a custom VJP)."""
        return self.config_runtime.diff_mode != "none"

    # ------------------------------------------------------------------ running
    def setup(self, shared: SharedState | None = None) -> "SimulationModel":
        """Build the engine (once per fidelity; compiled functions are kept); returns self."""
        if shared is not None:
            self._shared = shared
        fidelity = self.config_runtime.fidelity or self._shared.fidelity
        if self._built is None or self._built[0] != fidelity:
            if self.config_runtime.space_charge:
                raise NotImplementedError(f"model '{self.name}' ({self.type}): space charge is not "
                                          "modelled by this engine yet (config_runtime.space_charge)")
            self._built = (fidelity, self._build(fidelity))
        return self

    def run(self, values: dict[str, Any], *, ad: bool | None = None) -> dict[str, Any]:
        """The outputs for ``values`` (a dict by input name); see the class docstring for
        what happens to values that are not declared inputs.

        ``ad``: the call is being differentiated, so the engine's form quicker to
        differentiate is used (`Built.fn_ad`); None: when the inputs carry JAX's
        differentiation tracers (a pipeline's ``run(grad_of=...)`` says so explicitly).
        """
        built = self.setup()._built[1]
        ins = self._inputs(values, built.defaults)
        extras = {k: v for k, v in values.items() if k not in self.inputs}
        if extras and (not self.extra_inputs_allowed or self.extra_inputs_behavior == "error"):
            raise ValueError(f"model '{self.name}': inputs {sorted(extras)} are not declared "
                             f"(declared: {sorted(self.inputs)}) and extra inputs are refused")
        traced = _traced(ins)
        if ad is None:
            ad = traced and _differentiated(ins)
        fn = built.fn_ad if ad and built.fn_ad is not None else built.fn
        t0 = time.perf_counter()
        out = {**built.static, **fn(ins)}
        if not traced:
            _wait(out)
        wall = time.perf_counter() - t0
        out = self._outputs(out)
        out["walltime"] = np.float64(wall)
        return {**extras, **out} if self.extra_inputs_behavior == "passthrough" else out

    def _inputs(self, values: dict, defaults: dict) -> dict:
        ins = {}
        rp = None
        for name, port in self.inputs.items():
            if name in values or port.default is not None:
                v = values[name] if name in values else np.asarray(port.default, dtype=float)
                v = port.check_value(v, f"{self.name}.{name}")
                v = port.process(v) if port.processors else v
            elif name in defaults:
                v = defaults[name]
            else:
                raise ValueError(f"model '{self.name}': input '{name}' ({port.type}) has no value: "
                                 "give it, connect an output to it or set the port's default")
            if port.type in ("coordinates", "envelope") and port.coordinate_system != "madx":
                rp = rp or self.port_reference(port)
                v = to_madx(v, port.coordinate_system, rp)
            ins[name] = v
        return ins

    def _outputs(self, out: dict) -> dict:
        res = {}
        for name, port in self.outputs.items():
            if name == "walltime":
                continue
            v = out[name]
            if port.type in ("coordinates", "envelope") and port.coordinate_system != "madx":
                v = from_madx(v, port.coordinate_system, self.port_reference(port))
            res[name] = port.process(v) if port.processors else v
        return res

    def jit(self, fn: Callable) -> Callable:
        """``fn`` compiled with ``jax.jit`` unless ``config_runtime.use_jit`` is False."""
        return jax.jit(fn) if self.config_runtime.use_jit else fn


def _traced(ins: dict) -> bool:
    """Whether any input is a JAX tracer (being differentiated or jitted)."""
    for v in ins.values():
        if isinstance(v, jax.core.Tracer):
            return True
        if not isinstance(v, (np.ndarray, jax.Array)) and any(
                isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(v)):
            return True
    return False


_AD_TRACERS = ("JVPTracer", "LinearizeTracer", "GradTracer")


def _differentiated(ins: dict) -> bool:
    """Whether an input carries a differentiation tracer (not vmap's or jit's alone)."""
    return any(type(leaf).__name__ in _AD_TRACERS for leaf in jax.tree.leaves(ins))


def _wait(out: dict) -> None:
    """Wait for the outputs of one compiled call: they are ready together, so one will do."""
    for v in out.values():
        if isinstance(v, jax.Array):
            v.block_until_ready()
            return
    jax.block_until_ready([v for v in jax.tree.leaves(out) if isinstance(v, jax.Array)])
