"""JACC's engines as simulation models: particle tracking, and optics (Twiss and envelope)
of a lattice section, differentiable by automatic differentiation."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

import jax.numpy as jnp
import numpy as np
from pydantic import Field

import jacc
from jacc.containers import Envelope

from ._base import Built, SimulationModel
from ._lattice import flag_params
from ._observables import compute, outputs_of, particle_moments
from ._ports import Port

__all__ = ["JaccTrackingModel", "JaccOpticsModel", "jacc_preset"]


def jacc_preset(fidelity: str):
    """``(preset, fuse_linear)``: `jacc.Xsuite()` for ``"high"``; for ``"low"``,
    `jacc.Linear()` for every element type with runs of linear maps fused."""
    if fidelity == "high":
        return jacc.Xsuite(), False
    kinds = [k for k in jacc.Xsuite().models if k not in ("FieldMap", "NonlinearInsertField")]
    return jacc.Xsuite(methods={k: jacc.Linear() for k in kinds}), True


class _LatticeModel(SimulationModel):
    """A model of a lattice section whose ``config_lattice.params`` are scalar inputs."""

    FIXED_INPUTS: ClassVar[dict[str, str]] = {}  # name -> port type

    def _complete_ports(self) -> None:
        if self.config_lattice is None or self.config_lattice.file is None:
            raise ValueError(f"model '{self.name}' ({self.type}) needs config_lattice.file")
        for p in self.config_lattice.params:
            self.inputs.setdefault(p, Port(type="scalar", description="lattice parameter"))
        shape = self.config_runtime.particle_shape
        for name, port in self.inputs.items():
            kind = self.FIXED_INPUTS.get(name, "scalar" if name in self.config_lattice.params else None)
            if kind is None:
                raise ValueError(f"model '{self.name}' ({self.type}): unknown input '{name}'; inputs are "
                                 f"{sorted(self.FIXED_INPUTS)} and the parameters of config_lattice.params "
                                 f"({self.config_lattice.params})")
            if port.type != kind:
                raise ValueError(f"model '{self.name}': input '{name}' is a {kind}, declared {port.type}")
            if port.type == "coordinates" and shape is not None and port.shape is None:
                port.shape = list(shape)
        for port in self.outputs.values():
            if port.type == "coordinates" and shape is not None and port.shape is None:
                port.shape = list(shape)

    def _engine(self, fidelity: str):
        """``(engine, spec, dynamic defaults, fuse)`` with the parameters flagged."""
        lat, rp = self.lattice()
        flag_params(lat, self.config_lattice.params, f"model '{self.name}'")
        preset, fuse = jacc_preset(fidelity)
        engine = jacc.TrackingEngine(lat, rp, model=preset)
        spec, _, dynamic = engine.make_model()
        missing = [p for p in self.config_lattice.params if p not in dynamic]
        if missing:
            raise ValueError(f"model '{self.name}': parameters {missing} are not among the engine's "
                             f"differentiable parameters {sorted(dynamic)}")
        return engine, spec, {p: dynamic[p] for p in self.config_lattice.params}, fuse

    def _static(self) -> dict:
        return {"reference_particle": self.reference_particle()} if "reference_particle" in self.outputs else {}


class JaccTrackingModel(_LatticeModel):
    """Particles tracked through a lattice section by `jacc.TrackingEngine`.

    Inputs: ``particles`` ((n, 6) coordinates), optionally ``alive`` ((n,) flags), and
    the parameters of ``config_lattice.params``. Outputs: ``particles`` (at the exit),
    ``alive``, ``reference_particle``, ``bpm_centroids`` ((n_turns, n_monitors, 6), with
    ``config_runtime.diagnostics``), ``n_alive`` and the beam observables ``centroid``,
    ``covariance``, ``beam_sizes``, ``emittances``, ``beam_moments`` (see
    ``jacc_twin.models._observables``).
    """

    OUTPUTS: ClassVar = outputs_of({"particles": ("coordinates", [None, 6]), "alive": ("vector", [None]),
                                    "n_alive": ("scalar", None), "bpm_centroids": ("vector", None),
                                    "reference_particle": ("reference_particle", None)})
    FIXED_INPUTS: ClassVar = {"particles": "coordinates", "alive": "vector"}

    type: Literal["jacc_tracking"] = "jacc_tracking"
    inputs: dict[str, Port] = Field(default_factory=lambda: {"particles": Port(type="coordinates")})
    outputs: dict[str, Port] = Field(default_factory=lambda: {"particles": Port(type="coordinates")})

    def _complete_ports(self) -> None:
        if "particles" not in self.inputs:
            raise ValueError(f"model '{self.name}' (jacc_tracking) needs a 'particles' input")
        if "alive" in self.inputs:
            self.inputs["alive"].dtype = "bool"
        if "alive" in self.outputs:
            self.outputs["alive"].dtype = "bool"
        if "bpm_centroids" in self.outputs and not self.config_runtime.diagnostics:
            raise ValueError(f"model '{self.name}': output 'bpm_centroids' needs config_runtime.diagnostics")
        super()._complete_ports()

    def _build(self, fidelity: str) -> Built:
        engine, spec, defaults, fuse = self._engine(fidelity)
        record = "centroid" if self.config_runtime.diagnostics else None
        if fuse:
            from jacc.engine import fuse_linear

            spec = fuse_linear(spec, None if record is None else spec.monitors)
        params, names, n_turns = list(defaults), list(self.outputs), self.config_lattice.n_turns
        prog = _program(self, ("tracking", record, False), spec,
                        lambda: _tracking_program(spec, record, params, names, n_turns, reversible=False))
        table = jnp.asarray(spec.table)

        def fn(ins):
            return prog(table, ins)

        fn_ad = None
        if record is None and all(k.aperture is None for k in spec.kernels):
            prog_ad = _program(self, ("tracking", record, True), spec,
                               lambda: _tracking_program(spec, record, params, names, n_turns, reversible=True))

            def fn_ad(ins):
                return prog_ad(table, ins)

        shape = self.config_runtime.particle_shape
        if shape is not None:  # compile now, not on the first run
            fn({**defaults, "particles": np.zeros(shape)})
        return Built(fn, defaults, self._static(), fn_ad)


_PROGRAMS: dict = {}


def _program(model, kind: tuple, spec, make):
    """The compiled program of ``model`` for a compiled line ``spec``, shared by every model
    of the same line structure, parameters and outputs (the parameter table is an argument)."""
    from jacc.engine.cache import signature_token

    key = (kind, signature_token(spec), repr(spec.setters), spec.ref, spec.names, tuple(model.config_lattice.params),
           tuple(model.outputs), tuple(model.inputs), model.config_lattice.n_turns, model.config_runtime.use_jit)
    prog = _PROGRAMS.get(key)
    if prog is None:
        prog = _PROGRAMS[key] = model.jit(make())
    return prog


def _tracking_program(spec, record, params, names, n_turns, reversible: bool):
    """``prog(table, inputs) -> outputs`` of a tracking model (as
    `jacc.TrackingEngine.make_tracking_func`, with the parameter table an argument).

    ``reversible``: the form to differentiate, whose reverse mode re-tracks backwards
    through the inverse maps (``reverse="reversible"``: memory independent of the turns,
    and a program several times quicker to compile than reverse mode through the blocked
    tracker; its forward pass is slower); only without monitors and apertures.
    """
    from jacc.engine.tracker import (differentiable_kernels, make_reversible_turns, make_turn_tracker,
                                     table_from_dynamic)

    grads = differentiable_kernels(spec)
    if reversible:
        rrun = make_reversible_turns(spec, param_grads=grads)
    else:
        run = make_turn_tracker(spec, record=record, checkpoint=True, param_grads=grads)
    wants_moments = any(n in names for n in ("n_alive", "centroid", "covariance", "beam_sizes",
                                             "emittances", "beam_moments"))

    def prog(table, ins):
        full = table_from_dynamic(dataclasses.replace(spec, table=table), {p: ins[p] for p in params})
        x0, alive = jnp.asarray(ins["particles"]), ins.get("alive")
        out = {}
        if reversible:
            x = rrun(full, x0, n_turns)
            ok = jnp.all(jnp.isfinite(x), axis=1)
            ok = ok if alive is None else ok & alive
        else:
            res = run(full, x0, jnp.ones(x0.shape[0], bool) if alive is None else alive, n_turns)
            x, ok = res.x, res.alive
            if record is not None:
                out["bpm_centroids"] = res.monitors.centroid
        out.update(particles=x, alive=ok)
        if wants_moments:
            mean, cov, n = particle_moments(x, ok)
            out.update(compute(names, mean, cov), n_alive=n)
        return {k: v for k, v in out.items() if k in names}

    return prog


class JaccOpticsModel(_LatticeModel):
    """Optics of a lattice section: Twiss functions from the entrance's (a transfer line,
    4D) and the envelope ``S = M S0 M^T`` about the centroid (`jacc.optics.envelope`).

    Inputs: ``twiss`` (a `jacc.TwissInit` at the entrance) and/or ``envelope`` (a
    `jacc.Envelope` at the entrance), and the parameters of ``config_lattice.params``.
    Outputs: ``twiss`` (a `jacc.TwissInit` at the exit, to feed the next section),
    ``twiss_table`` (the Twiss table along the section), ``envelope`` (at the exit),
    ``reference_particle`` and the observables of the exit envelope (``centroid``,
    ``covariance``, ``beam_sizes``, ``emittances``, ``beam_moments``).
    """

    OUTPUTS: ClassVar = outputs_of({"twiss": ("twiss", None), "twiss_table": ("twiss", None),
                                    "envelope": ("envelope", None),
                                    "reference_particle": ("reference_particle", None)})
    FIXED_INPUTS: ClassVar = {"twiss": "twiss", "envelope": "envelope"}

    type: Literal["jacc_optics"] = "jacc_optics"
    inputs: dict[str, Port] = Field(default_factory=lambda: {"envelope": Port(type="envelope")})
    outputs: dict[str, Port] = Field(default_factory=lambda: {"envelope": Port(type="envelope")})

    def _complete_ports(self) -> None:
        super()._complete_ports()
        wants_twiss = any(n in self.outputs for n in ("twiss", "twiss_table"))
        if wants_twiss and "twiss" not in self.inputs:
            raise ValueError(f"model '{self.name}': outputs 'twiss'/'twiss_table' need a 'twiss' input")
        if set(self.outputs) - {"twiss", "twiss_table", "reference_particle", "walltime"} \
                and "envelope" not in self.inputs:
            raise ValueError(f"model '{self.name}': envelope outputs need an 'envelope' input")

    def _build(self, fidelity: str) -> Built:
        engine, spec, defaults, _ = self._engine(fidelity)
        prog = _program(self, ("optics",), spec,
                        lambda: _optics_program(spec, engine.lattice.name, list(defaults), list(self.outputs),
                                                "twiss" in self.inputs))
        table = jnp.asarray(spec.table)

        def fn(ins):
            return prog(table, ins)

        return Built(fn, defaults, self._static())


def _optics_program(spec, name, params, names, with_twiss):
    """``prog(table, inputs) -> outputs`` of an optics model."""
    from jacc.engine.tracker import table_from_dynamic
    from jacc.optics.envelope import make_envelope_func
    from jacc.optics.twiss import INIT_FIELDS, make_twiss_core

    env_fn = make_envelope_func(spec, name)
    twiss_core = make_twiss_core(spec, periodic=False, chrom=False, name=name) if with_twiss else None

    def prog(table, ins):
        table = table_from_dynamic(dataclasses.replace(spec, table=table), {p: ins[p] for p in params})
        out = {}
        if twiss_core is not None:
            tw, _ = twiss_core(table, jnp.zeros(()), ins["twiss"].vector())
            out["twiss_table"] = tw
            out["twiss"] = jacc.TwissInit(**{k: getattr(tw, k)[-1] for k in INIT_FIELDS})
        if "envelope" in ins:
            e = env_fn(table, ins["envelope"].sigma, ins["envelope"].mean)
            out["envelope"] = Envelope(sigma=e.sigma[-1], mean=e.mean[-1])
            out.update(compute(names, e.mean[-1], e.sigma[-1]))
        return {k: v for k, v in out.items() if k in names}

    return prog
