"""`Surrogate`: an Equinox MLP from named scalar inputs to named output ports.

Inputs and outputs are normalised inside the module (``(inputs - x_mean) / x_scale`` in,
``y_mean + y_scale * mlp(...)`` out), so a saved surrogate is used on physical values as
they are. An output port is a named array (a scalar ``()``, a centroid ``(6,)``, a
covariance ``(6, 6)``...); the MLP's output vector is the ports flattened and concatenated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import prod

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["ACTIVATIONS", "Surrogate", "output_ports"]

ACTIVATIONS = {"tanh": jnp.tanh, "gelu": jax.nn.gelu, "silu": jax.nn.silu,
               "softplus": jax.nn.softplus, "relu": jax.nn.relu}
"""Hidden-layer activations by name (the name is what a saved surrogate records)."""

Ports = tuple[tuple[str, tuple[int, ...]], ...]


def output_ports(names) -> Ports:
    """``((name, shape), ...)`` from a sequence of scalar names or a mapping name -> shape."""
    if isinstance(names, str):
        raise TypeError(f"output names must be a sequence or a mapping, not the string {names!r}")
    if isinstance(names, Mapping):
        ports = tuple((str(k), tuple(int(d) for d in (v if isinstance(v, Sequence) else (v,))))
                      for k, v in names.items())
    else:
        ports = tuple((str(k), ()) for k in names)
    _check_names("output", [k for k, _ in ports])
    bad = [k for k, s in ports if any(d < 1 for d in s)]
    if bad:
        raise ValueError(f"output ports {bad} have an empty shape dimension")
    return ports


def _check_names(kind: str, names) -> None:
    if not names:
        raise ValueError(f"a surrogate needs at least one {kind} name")
    dup = sorted({n for n in names if list(names).count(n) > 1})
    if dup:
        raise ValueError(f"{kind} names given more than once: {dup}")


class Surrogate(eqx.Module):
    """A multilayer perceptron with its normalisation and port names.

    Attributes:
        layers: the dense layers (hidden ones followed by the activation, the last linear).
        x_mean, x_scale: ``(n_in,)`` input normalisation (units of each input).
        y_mean, y_scale: ``(n_out,)`` output normalisation (units of each output).
        input_names: names of the scalar inputs, in the order of the input vector (static).
        output_ports: ``((name, shape), ...)`` of the outputs (static).
        activation: name of the hidden-layer activation, a key of `ACTIVATIONS` (static).

    ``sur(inputs (n_in,)) -> (n_out,)`` handles one example; batch with ``jax.vmap``.
    """

    layers: tuple[eqx.nn.Linear, ...]
    x_mean: Float[Array, " n_in"]
    x_scale: Float[Array, " n_in"]
    y_mean: Float[Array, " n_out"]
    y_scale: Float[Array, " n_out"]
    input_names: tuple[str, ...] = eqx.field(static=True)
    output_ports: Ports = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(self, input_names, output_names, hidden=(64, 64), *, key: PRNGKeyArray,
                 activation: str = "tanh", x_mean=None, x_scale=None, y_mean=None, y_scale=None):
        """A fresh (untrained) surrogate.

        Args:
            input_names: names of the scalar inputs.
            output_names: scalar output names, or a mapping name -> shape (ports).
            hidden: widths of the hidden layers.
            key: JAX random key of the initial weights.
            activation: hidden-layer activation (`ACTIVATIONS`).
            x_mean, x_scale, y_mean, y_scale: normalisation (default 0 and 1).
        """
        self.input_names = tuple(str(n) for n in input_names)
        _check_names("input", self.input_names)
        self.output_ports = output_ports(output_names)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        self.activation = activation
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden layer widths must be positive, got {hidden}")
        sizes = (len(self.input_names),) + hidden + (self.n_out,)
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(eqx.nn.Linear(a, b, key=k, dtype=jnp.float64)
                            for a, b, k in zip(sizes[:-1], sizes[1:], keys))
        n_in, n_out = len(self.input_names), self.n_out
        self.x_mean = _vector(x_mean, n_in, 0.0, "x_mean")
        self.x_scale = _vector(x_scale, n_in, 1.0, "x_scale")
        self.y_mean = _vector(y_mean, n_out, 0.0, "y_mean")
        self.y_scale = _vector(y_scale, n_out, 1.0, "y_scale")

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the output ports."""
        return tuple(k for k, _ in self.output_ports)

    @property
    def hidden(self) -> tuple[int, ...]:
        """Widths of the hidden layers."""
        return tuple(layer.out_features for layer in self.layers[:-1])

    @property
    def n_in(self) -> int:
        return len(self.input_names)

    @property
    def n_out(self) -> int:
        """Length of the output vector (the ports flattened)."""
        return sum(prod(s) for _, s in self.output_ports)

    def __call__(self, inputs: Float[Array, " n_in"]) -> Float[Array, " n_out"]:
        """The output vector for one input vector (physical units both sides)."""
        act = ACTIVATIONS[self.activation]
        h = (inputs - self.x_mean) / self.x_scale
        for layer in self.layers[:-1]:
            h = act(layer(h))
        return self.y_mean + self.y_scale * self.layers[-1](h)

    def predict(self, inputs: Mapping[str, object]) -> dict[str, Array]:
        """Outputs by port name for inputs by name; each input a scalar or an array of
        batch shape ``B`` (all alike), each output of shape ``B + port shape``."""
        missing = [n for n in self.input_names if n not in inputs]
        extra = sorted(set(inputs) - set(self.input_names))
        if missing or extra:
            raise KeyError(f"Surrogate.predict: inputs must be exactly {list(self.input_names)}; "
                           f"missing {missing}, unknown {extra}")
        cols = jnp.broadcast_arrays(*(jnp.asarray(inputs[n], dtype=jnp.float64)
                                      for n in self.input_names))
        batch = cols[0].shape
        x = jnp.stack(cols, axis=-1).reshape(-1, self.n_in)
        y = _batched(self, x)
        out, start = {}, 0
        for name, shape in self.output_ports:
            size = prod(shape)
            out[name] = y[:, start:start + size].reshape(batch + shape)
            start += size
        return out


@eqx.filter_jit
def _batched(sur: Surrogate, x):
    return jax.vmap(sur)(x)


def _vector(v, n: int, default: float, name: str):
    if v is None:
        return jnp.full(n, default, dtype=jnp.float64)
    v = jnp.asarray(v, dtype=jnp.float64)
    if v.shape != (n,):
        raise ValueError(f"Surrogate: {name} must have shape ({n},), got {v.shape}")
    return v
