"""Training a `Surrogate` with optax: `fit`, the `TrainHistory` it returns, its loss plot."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jacc._tiered import TieredJit

from ._model import Surrogate

__all__ = ["TrainHistory", "fit", "latin_hypercube", "plot_history"]

_CHUNK = 100  # optimisation steps per compiled call (and per progress-bar update)


class TrainHistory(NamedTuple):
    """Losses during training: mean squared errors in normalised units (1 = the data's spread).

    Attributes:
        loss: ``(steps,)`` training loss at each step (on the batch of that step).
        val_step: steps after which the validation loss was computed.
        val_loss: the validation loss there (empty without validation data).
        options: the training hyper-parameters (what `jacc.surrogate.save` writes into the
            header's ``training`` entry with the final losses).
    """

    loss: np.ndarray
    val_step: np.ndarray
    val_loss: np.ndarray
    options: dict = {}

    def summary(self) -> dict:
        """Hyper-parameters and final losses, JSON-serialisable."""
        out = dict(self.options)
        out["final_loss"] = float(self.loss[-1]) if len(self.loss) else None
        out["final_val_loss"] = float(self.val_loss[-1]) if len(self.val_loss) else None
        return out


def _as_data(X, Y, n_in: int, n_out: int, what: str):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y.reshape(Y.shape[0], -1) if Y.ndim > 1 else Y[:, None]
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(f"fit: {what} inputs must have shape (m, {n_in}) for {n_in} input "
                         f"names, got {X.shape}")
    if Y.shape != (X.shape[0], n_out):
        raise ValueError(f"fit: {what} outputs must have shape ({X.shape[0]}, {n_out}) (the "
                         f"output ports flattened), got {Y.shape}")
    bad = ~(np.isfinite(X).all(axis=1) & np.isfinite(Y).all(axis=1))
    if bad.any():
        raise ValueError(f"fit: {what} rows {np.flatnonzero(bad)[:10].tolist()} are not finite")
    return X, Y


def _scales(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = A.mean(axis=0), A.std(axis=0)
    # a constant column (e.g. a fixed knob) is only shifted: its scale stays 1
    return mean, np.where(std > 0.0, std, 1.0)


def _normalised_mse(sur: Surrogate, X, Y):
    pred = jax.vmap(sur)(X)
    return jnp.mean(((pred - Y) / sur.y_scale) ** 2)


def _with_layers(sur: Surrogate, layers) -> Surrogate:
    return eqx.tree_at(lambda s: s.layers, sur, layers)


_LBFGS = optax.lbfgs()


@functools.lru_cache(maxsize=16)
def _adam(lr: float, total: int):
    return optax.adam(optax.cosine_decay_schedule(lr, total, alpha=1e-2))


def _optimizer(optimizer, lr: float, total: int, batch_size: int | None):
    """The optax transformation and whether it takes the loss value (a line search).

    The built-in ones are made once (per learning rate and length): the compiled training
    program is keyed on them, so a second fit of the same shapes compiles nothing.
    """
    if optimizer is None:
        optimizer = "lbfgs" if batch_size is None else "adam"
    if isinstance(optimizer, str) and optimizer == "adam":
        return _adam(float(lr), int(total)), False
    if isinstance(optimizer, str) and optimizer == "lbfgs":
        if batch_size is not None:
            raise ValueError("fit: optimizer='lbfgs' needs the full batch (batch_size=None); "
                             "use optimizer='adam' with mini-batches")
        return _LBFGS, True
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer, False
    raise ValueError(f"fit: optimizer must be 'lbfgs', 'adam' or an optax transformation, "
                     f"got {optimizer!r}")


def _chunk(sur: Surrogate, state, key, X, Y, *, opt, line_search: bool, batch_size: int | None):
    """``_CHUNK`` optimisation steps of ``sur``'s layers: ``(sur, state, key, losses)``."""

    def loss_fn(layers, xb, yb):
        return _normalised_mse(_with_layers(sur, layers), xb, yb)

    def full_loss(layers):
        return loss_fn(layers, X, Y)

    # L-BFGS: the value and gradient its line search computed are reused from its state
    lbfgs_value_grad = optax.value_and_grad_from_state(full_loss)

    def step(carry, _):
        layers, state, key = carry
        key, sub = jax.random.split(key)
        if line_search:
            loss, grads = lbfgs_value_grad(layers, state=state)
            updates, state = opt.update(grads, state, layers, value=loss, grad=grads,
                                        value_fn=full_loss)
        else:
            if batch_size is None:
                xb, yb = X, Y
            else:
                idx = jax.random.choice(sub, X.shape[0], (batch_size,), replace=False)
                xb, yb = X[idx], Y[idx]
            loss, grads = jax.value_and_grad(loss_fn)(layers, xb, yb)
            updates, state = opt.update(grads, state, layers)
        return (optax.apply_updates(layers, updates), state, key), loss

    (layers, state, key), losses = jax.lax.scan(step, (sur.layers, state, key), None, length=_CHUNK)
    return _with_layers(sur, layers), state, key, losses


_PROGRAMS: dict = {}


def _chunk_program(opt, line_search: bool, batch_size: int | None) -> TieredJit:
    """`_chunk` compiled for one optimiser, in tiers (`jacc._tiered`): the quick program
    trains at once (2 s to compile against 10 s), the optimised one (3x faster steps)
    takes over when its background compilation is done."""
    key = (opt, line_search, batch_size)
    prog = _PROGRAMS.get(key)
    if prog is None:
        def run(sur, state, rng, X, Y):
            return _chunk(sur, state, rng, X, Y, opt=opt, line_search=line_search,
                          batch_size=batch_size)

        prog = _PROGRAMS[key] = TieredJit(run)
    return prog


def fit(X, Y, input_names, output_names, *, hidden=(64, 64), steps: int = 2000,
        lr: float = 3e-3, seed: int = 0, batch_size: int | None = None, activation: str = "tanh",
        optimizer=None, validation=None, plot_path=None,
        progress: bool = True) -> tuple[Surrogate, TrainHistory]:
    """Train a `Surrogate` on examples ``X (m, n_in)`` -> ``Y (m, n_out)``.

    Minimises the mean squared error of the normalised outputs; the normalisation (mean and
    standard deviation of ``X`` and ``Y``) becomes part of the module. Full-batch training
    uses L-BFGS (optax, with its line search), which reaches errors of 1e-4 of the outputs'
    spread on smooth beam-physics maps where Adam stalls near 1e-2; mini-batches use Adam
    with a cosine-decaying learning rate (``lr`` to ``lr / 100``).

    Args:
        X: inputs, one row per example, columns in the order of ``input_names``.
        Y: outputs, one row per example: the output ports flattened and concatenated.
        input_names: names of the scalar inputs (e.g. knobs, beam current).
        output_names: scalar output names, or a mapping name -> shape (ports).
        hidden: hidden-layer widths.
        steps: optimisation steps (rounded up to a multiple of 100).
        lr: Adam's initial learning rate (L-BFGS takes its steps from a line search).
        seed: seed of the initial weights and of the batches.
        batch_size: examples per step (None: all of them).
        activation: hidden-layer activation (`jacc.surrogate.ACTIVATIONS`).
        optimizer: ``"lbfgs"`` (default for the full batch), ``"adam"`` (default with
            ``batch_size``) or any optax ``GradientTransformation``.
        validation: ``(X_val, Y_val)`` held-out examples, evaluated every 100 steps.
        plot_path: where to write the loss curve (PNG, PDF...); None: no plot.
        progress: show a progress bar (tqdm).

    Returns:
        ``(surrogate, history)``.
    """
    key = jax.random.PRNGKey(int(seed))
    init_key, key = jax.random.split(key)
    sur = Surrogate(input_names, output_names, hidden, key=init_key, activation=activation)
    X, Y = _as_data(X, Y, sur.n_in, sur.n_out, "training")
    if batch_size is not None and not 1 <= batch_size <= X.shape[0]:
        raise ValueError(f"fit: batch_size must be between 1 and {X.shape[0]}, got {batch_size}")
    val = None if validation is None else _as_data(*validation, sur.n_in, sur.n_out, "validation")
    (xm, xs), (ym, ys) = _scales(X), _scales(Y)
    sur = Surrogate(input_names, output_names, hidden, key=init_key, activation=activation,
                    x_mean=xm, x_scale=xs, y_mean=ym, y_scale=ys)
    n_chunks = max(1, -(-int(steps) // _CHUNK))
    opt, line_search = _optimizer(optimizer, lr, n_chunks * _CHUNK, batch_size)
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    state = opt.init(sur.layers)
    chunk = _chunk_program(opt, line_search, batch_size)
    losses, vsteps, vlosses = [], [], []
    with tqdm(total=n_chunks * _CHUNK, disable=not progress, desc="surrogate fit", unit="step") as bar:
        for c in range(n_chunks):
            sur, state, key, ls = chunk(sur, state, key, Xj, Yj)
            losses.append(np.asarray(ls))
            post = {"loss": f"{float(ls[-1]):.3e}"}
            if val is not None:
                vsteps.append((c + 1) * _CHUNK)
                vlosses.append(float(_validation_loss(sur, *val)))
                post["val"] = f"{vlosses[-1]:.3e}"
            bar.set_postfix(post, refresh=False)
            bar.update(_CHUNK)
    options = {"hidden": list(sur.hidden), "activation": activation, "steps": n_chunks * _CHUNK,
               "lr": float(lr), "seed": int(seed), "batch_size": batch_size,
               "optimizer": optimizer if isinstance(optimizer, str) else
               ("lbfgs" if line_search else "adam" if optimizer is None else "custom"),
               "n_examples": int(X.shape[0])}
    history = TrainHistory(np.concatenate(losses), np.asarray(vsteps, dtype=np.int64),
                           np.asarray(vlosses, dtype=np.float64), options)
    if plot_path is not None:
        plot_history(history, plot_path)
    return sur, history


_validation_loss = jax.jit(_normalised_mse)


def plot_history(history: TrainHistory, path) -> Path:
    """Write the loss curve (log scale) of ``history`` to ``path`` with matplotlib's Agg
    canvas (no display, pyplot's state untouched); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.semilogy(np.arange(1, len(history.loss) + 1), history.loss, label="training")
    if len(history.val_loss):
        ax.semilogy(history.val_step, history.val_loss, "o-", ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("mean squared error (normalised)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def latin_hypercube(bounds: Mapping[str, tuple[float, float]], n: int, *,
                    seed: int = 0) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(X (n, d), names)``: ``n`` Latin-hypercube samples of the inputs within ``bounds``
    (name -> (low, high), units of each input): each input's range is cut into ``n`` equal
    bins, one sample per bin, bins paired at random."""
    names = tuple(bounds)
    lo = np.asarray([float(bounds[k][0]) for k in names])
    hi = np.asarray([float(bounds[k][1]) for k in names])
    if not np.all(hi >= lo):
        raise ValueError(f"latin_hypercube: every bound needs low <= high, got {dict(bounds)}")
    rng = np.random.default_rng(seed)
    u = (np.stack([rng.permutation(n) for _ in names], axis=1) + rng.random((n, len(names)))) / n
    return lo + u * (hi - lo), names
