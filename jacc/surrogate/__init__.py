"""Neural surrogates: Equinox MLPs from named scalar inputs to named output ports.

- `Surrogate`: the module (normalisation inside; ``sur(inputs (n_in,)) -> (n_out,)``,
  ``sur.predict({name: value}) -> {port: array}``).
- `fit`: training with optax (progress bar, loss-curve plot, `TrainHistory`).
- `save` / `load`: ``.eqx`` weights (`equinox.tree_serialise_leaves`) and a JSON header
  with the ports, widths and activation, so a loaded surrogate needs no training code.
- `latin_hypercube`: input samples within bounds, to make training data.

Training data come from any engine: JACC (``jax.vmap`` over knob values), Xsuite or ImpactX
(`jacc.bridges.XsuiteStage.training_data` for per-particle stage surrogates).
"""

from ._io import header_path, load, save
from ._model import ACTIVATIONS, Surrogate
from ._train import TrainHistory, fit, latin_hypercube, plot_history

__all__ = ["ACTIVATIONS", "Surrogate", "TrainHistory", "fit", "header_path", "latin_hypercube",
           "load", "plot_history", "save"]
