"""A non-differentiable code as a stage of a JAX program: `Stage` and its `StageConfig`.

``y = stage(values, x)`` runs one pass of the code (Xsuite, ImpactX) on MAD-X coordinates
``x (n, 6)`` with the stage parameters set to ``values (p,)``. The pass is a
``jax.pure_callback`` (so it works under ``jit``); its derivative is a ``jax.custom_vjp``
computed either by central finite differences on the code itself (`jacc.bridges._stage_fd`)
or by a trained per-particle surrogate (`jacc.surrogate.Surrogate`), as the config says.
Under ``vmap`` the callback receives the whole batch (``vmap_method="expand_dims"``) and
tracks the members that share parameter values in one call of the code.

Lost particles come back as NaN rows; ``jnp.isfinite(y).all(axis=1)`` is the alive mask,
and a lost particle contributes nothing to the gradients.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._names import check_inputs
from ._stage_fd import FDSteps, host_forward, host_vjp
from ._stage_params import StageParams

__all__ = ["COORDINATES", "Stage", "StageConfig"]

COORDINATES = ("x", "px", "y", "py", "t", "pt")
"""Names of the MAD-X coordinates: a stage surrogate's last six inputs and its outputs."""


class StageConfig(BaseModel):
    """How a stage's derivative is computed.

    Attributes:
        vjp: ``"fd"``: central finite differences on the code; ``"surrogate"``: the
            vector-Jacobian product of ``surrogate`` (no extra runs of the code).
        fd_rel_step, fd_abs_step: finite-difference step of each parameter and coordinate,
            ``max(fd_rel_step |value|, fd_abs_step)`` (units of the value). ``fd_rel_step=None``
            takes the code's default (`Stage.default_fd_rel_step`): about the cube root of
            the code's relative rounding of a pass, the step where central differences
            lose as much to rounding as to truncation.
        fd_steps: absolute steps for some parameters by name, replacing the rule above.
        surrogate: a `jacc.surrogate.Surrogate` of one particle's pass, or the path of its
            ``.eqx`` file; inputs: the stage parameters then ``x, px, y, py, t, pt``,
            outputs: ``x, px, y, py, t, pt`` after the pass (see `Stage.surrogate_ports`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    vjp: Literal["fd", "surrogate"] = Field(default="fd", description="derivative method")
    fd_rel_step: float | None = Field(default=None, gt=0.0, description="relative FD step")
    fd_abs_step: float = Field(default=1e-8, gt=0.0, description="smallest FD step")
    fd_steps: dict[str, float] = Field(default_factory=dict, description="FD steps by name")
    surrogate: Any = Field(default=None, description="Surrogate or path of its .eqx file")

    @field_validator("fd_steps")
    @classmethod
    def _positive_steps(cls, v):
        bad = {k: s for k, s in v.items() if not (np.isfinite(s) and s > 0)}
        if bad:
            raise ValueError(f"fd_steps must be positive and finite, got {bad}")
        return v

    @model_validator(mode="after")
    def _surrogate_given(self):
        if self.vjp == "surrogate" and self.surrogate is None:
            raise ValueError("StageConfig: vjp='surrogate' needs surrogate= (a "
                             "jacc.surrogate.Surrogate or the path of its .eqx file)")
        s = self.surrogate
        if s is not None and not isinstance(s, (str, Path)) and not hasattr(s, "input_names"):
            raise TypeError(f"StageConfig: surrogate must be a jacc.surrogate.Surrogate or a "
                            f"path, got {type(s).__name__}")
        return self


class Stage:
    """Base of the code stages (`XsuiteStage`, `ImpactXStage`): parameters, checks, the JAX
    function. Subclasses implement ``_track(values (p,), x (m, 6)) -> (m, 6)`` with NumPy.

    Args:
        lat: the lattice (copied: later edits of ``lat`` do not reach the stage).
        rp: the reference particle.
        params: knob names (``lat.knobs``) or ``"element.field"`` / ``"element:n.field"``
            names, in the order of the ``values`` vector.
        config: a `StageConfig` (default: finite differences).

    Attributes:
        param_names, n_params: the parameters, in the order of the ``values`` vector.
        initial_values: ``(p,)`` their values in ``lat`` when the stage was made.
        fd_steps: the finite-difference steps in force (`jacc.bridges._stage_fd.FDSteps`).
        surrogate: the surrogate of ``config`` (loaded if given as a path), or None.
    """

    code = "?"
    default_fd_rel_step = 1e-5

    def __init__(self, lat, rp, params, config: StageConfig | None = None):
        check_inputs(type(self).__name__, lat, rp)
        self.config = StageConfig() if config is None else config
        if not isinstance(self.config, StageConfig):
            raise TypeError(f"{type(self).__name__}: config must be a StageConfig, "
                            f"got {type(self.config).__name__}")
        self.reference_particle = rp
        self._params = StageParams(lat.copy(), params)
        unknown = sorted(set(self.config.fd_steps) - set(self._params.names))
        if unknown:
            raise ValueError(f"{type(self).__name__}: fd_steps names {unknown}, which are not "
                             f"stage parameters {list(self._params.names)}")
        self.initial_values = self._params.values()
        rel = self.config.fd_rel_step
        self.fd_steps = FDSteps(self.default_fd_rel_step if rel is None else rel,
                                self.config.fd_abs_step, dict(self.config.fd_steps))
        self._lock = threading.Lock()
        self.surrogate = self._surrogate()
        self._fn = _stage_function(self)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names, in the order of the ``values`` vector."""
        return self._params.names

    @property
    def n_params(self) -> int:
        """Number of parameters ``p``."""
        return len(self._params.names)

    def surrogate_ports(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(input_names, output_names)`` a surrogate of this stage must have: the
        parameters then the entrance coordinates, and the exit coordinates."""
        return self.param_names + COORDINATES, COORDINATES

    def __call__(self, values: Float[Array, " p"] | Mapping[str, Any],
                 x: Float[Array, "n 6"]) -> Float[Array, "n 6"]:
        """Coordinates ``(n, 6)`` after one pass (NaN rows: lost particles).

        Args:
            values: parameter values ``(p,)`` in `param_names` order, or a mapping by name.
            x: MAD-X coordinates ``(x [m], px, y [m], py, t [m], pt)``, shape ``(n, 6)``.
        """
        values = self._values_vector(values)
        x = jnp.asarray(x, dtype=jnp.float64)
        if x.ndim != 2 or x.shape[1] != 6:
            raise ValueError(f"{type(self).__name__}: x must have shape (n, 6) (x, px, y, py, "
                             f"t, pt), got {x.shape}")
        return self._fn(values, x)

    def track(self, values, x) -> np.ndarray:
        """One pass on the host, without JAX: ``(n, 6)`` NumPy coordinates (NaN: lost)."""
        values = np.asarray(self._values_vector(values), dtype=np.float64)
        return self._host_forward(values, np.atleast_2d(np.asarray(x, dtype=np.float64)))

    def training_data(self, values, x) -> tuple[np.ndarray, np.ndarray]:
        """Surrogate training pairs from passes of the code: ``X (m n, p + 6)`` (parameters,
        entrance coordinates) and ``Y (m n, 6)`` (exit coordinates); lost particles are
        left out.

        Args:
            values: ``(m, p)`` parameter sets.
            x: ``(n, 6)`` particles for every set, or ``(m, n, 6)``, other particles for
                each (a surrogate then sees ``m n`` distinct entrance points, which its
                derivative with respect to the coordinates needs).
        """
        values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        x = np.asarray(x, dtype=np.float64)
        m = values.shape[0]
        if x.ndim == 2:
            x = np.broadcast_to(x, (m,) + x.shape)
        if x.ndim != 3 or x.shape[0] != m or x.shape[2] != 6:
            raise ValueError(f"{type(self).__name__}.training_data: x must have shape (n, 6) or "
                             f"({m}, n, 6) for {m} parameter sets, got {x.shape}")
        y = self._host_forward(values, x)  # (m, n, 6): one pass per parameter set
        n = x.shape[1]
        inputs = np.concatenate([np.repeat(values, n, axis=0), x.reshape(-1, 6)], axis=1)
        outputs = y.reshape(-1, 6)
        ok = np.isfinite(outputs).all(axis=1)
        return inputs[ok], outputs[ok]

    # ---------------------------------------------------------------- internals
    def _values_vector(self, values):
        if isinstance(values, Mapping):
            missing = [k for k in self.param_names if k not in values]
            extra = sorted(set(values) - set(self.param_names))
            if missing or extra:
                raise KeyError(f"{type(self).__name__}: values by name need exactly "
                               f"{list(self.param_names)}; missing {missing}, unknown {extra}")
            values = jnp.stack([jnp.asarray(values[k], dtype=jnp.float64) for k in self.param_names])
        values = jnp.asarray(values, dtype=jnp.float64)
        if values.shape != (self.n_params,):
            raise ValueError(f"{type(self).__name__}: values must have shape ({self.n_params},) "
                             f"for parameters {list(self.param_names)}, got {values.shape}")
        return values

    def _surrogate(self):
        s = self.config.surrogate
        if s is None:
            return None
        if isinstance(s, (str, Path)):
            from jacc.surrogate import load

            s = load(s)
        want = self.surrogate_ports()
        got = (tuple(s.input_names), tuple(s.output_names))
        if got != want:
            raise ValueError(f"{type(self).__name__}: the surrogate's ports {got} are not the "
                             f"stage's (inputs, outputs) {want}")
        return s

    def _track(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _host_forward(self, values, x):
        with self._lock:
            return host_forward(self._track, values, x)

    def _host_vjp(self, values, x, ybar):
        with self._lock:
            return host_vjp(self._track, self.param_names, self.fd_steps, values, x, ybar)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(params={list(self.param_names)}, "
                f"vjp={self.config.vjp!r})")


def _surrogate_vjp(sur, values, x, y, ybar):
    """Cotangents of ``(values, x)`` from the surrogate's own VJP (lost particles: zero)."""
    alive = jnp.all(jnp.isfinite(y), axis=-1)
    ybar = jnp.where(alive[:, None], ybar, 0.0)

    def per_particle(v, x):
        v = jnp.broadcast_to(v, (x.shape[0], v.shape[0]))
        return jax.vmap(sur)(jnp.concatenate([v, x], axis=1))

    _, pull = jax.vjp(per_particle, values, x)
    vbar, xbar = pull(ybar)
    return vbar, jnp.where(alive[:, None], xbar, 0.0)


def _stage_function(stage: Stage):
    """``f(values (p,), x (n, 6)) -> (n, 6)``: callback forward, custom VJP backward."""

    def forward(values, x):
        out = jax.ShapeDtypeStruct(x.shape, jnp.float64)
        return jax.pure_callback(stage._host_forward, out, values, x, vmap_method="expand_dims")

    @jax.custom_vjp
    def f(values, x):
        return forward(values, x)

    def f_fwd(values, x):
        y = forward(values, x)
        return y, (values, x, y)

    def f_bwd(res, ybar):
        values, x, y = res
        if stage.config.vjp == "surrogate":
            return _surrogate_vjp(stage.surrogate, values, x, y, ybar)
        shapes = (jax.ShapeDtypeStruct(values.shape, jnp.float64),
                  jax.ShapeDtypeStruct(x.shape, jnp.float64))
        return jax.pure_callback(stage._host_vjp, shapes, values, x, ybar,
                                 vmap_method="expand_dims")

    f.defvjp(f_fwd, f_bwd)
    return f
