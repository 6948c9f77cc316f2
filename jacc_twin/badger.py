"""A Badger environment over the twin's LUME face.

Badger (SLAC's optimisation GUI, ``pip install badger-opt``) loads environments as plugins:
a folder ``environments/<name>/`` holding ``configs.yaml`` and an ``__init__.py`` whose
class ``Environment`` derives from ``badger.environment.Environment`` (a Pydantic model)
with the class attributes ``name``, ``variables`` (name -> ``[low, high]``) and
``observables`` (names), and the methods ``get_variables``, ``set_variables``,
``get_observables``, ``reset_environment``. Badger builds it as
``Environment(interface=None, **params)`` (once just to read the bounds), checks every
setpoint against ``get_bounds`` before ``set_variables`` and evaluates formula observables
around ``get_observables``.

This module's `Environment` is such a class when Badger is installed; otherwise it derives
from a plain Pydantic model and keeps the same interface. `write_plugin(root)` writes the
plugin folder Badger scans (``BADGER_PLUGIN_ROOT``). The twin is built on first use, so
that Badger's bounds query does not build one.
"""

from __future__ import annotations

import pathlib
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from .names import variables as _table

try:  # Badger is optional
    from badger import environment as _badger_env

    _Base = _badger_env.Environment
    HAVE_BADGER = True
except ImportError:  # the same interface, standalone
    class _Base(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        interface: Any = None

    HAVE_BADGER = False

__all__ = ["Environment", "HAVE_BADGER", "write_plugin"]


def _settings() -> dict:
    return {v.variable: [v.low, v.high] for v in _table().values() if v.kind == "setting"}


def _observables() -> list[str]:
    return [v.variable for v in _table().values() if v.kind in ("reading", "derived")]


class Environment(_Base):
    """The IOTA twin as a Badger environment.

    Attributes (Badger's ``params``):
        species: ``"electron"`` or ``"proton"``; errors_seed: the machine's faults (None:
            none); seed: the devices' noise; settle: simulated seconds after each write.
        twin: an `jacc_twin.iota.IotaTwin` to drive instead of building one.

    Class attributes ``variables`` (every setting of the name table and its range) and
    ``observables`` (every scalar reading and derived value).
    """

    name: ClassVar[str] = "jacc_iota_twin"
    variables: ClassVar[dict[str, list[float]]] = _settings()
    observables: ClassVar[list[str]] = _observables()

    species: str = "electron"
    errors_seed: int | None = None
    seed: int = 0
    settle: float = 0.0
    twin: Any = None

    _model: Any = PrivateAttr(default=None)

    @property
    def model(self):
        """The `jacc_twin.lume.TwinLUMEModel` the environment drives (built on first use)."""
        if self._model is None:
            from .iota import IotaTwin
            from .lume import TwinLUMEModel

            if self.twin is None:
                self.twin = IotaTwin(self.species, self.errors_seed, seed=self.seed)
            self._model = TwinLUMEModel(self.twin, settle=self.settle)
        return self._model

    def get_variables(self, variable_names: list[str]) -> dict:
        return self.model.get(list(variable_names))

    def set_variables(self, variable_inputs: dict) -> None:
        self.model.set({k: float(v) for k, v in variable_inputs.items()})

    def get_observables(self, observable_names: list[str]) -> dict:
        unknown = [n for n in observable_names if n not in self._observable_set]
        if unknown:
            raise ValueError(f"unknown observables {unknown}; see Environment.observables")
        return self.model.get(list(observable_names))

    def reset_environment(self) -> None:
        self.model.reset()

    _observable_set: ClassVar[frozenset] = frozenset(observables)


_CONFIGS = """---
name: jacc_iota_twin
description: "The IOTA digital twin of JACC-Twin (jacc_twin.badger)"
version: "1.0"
dependencies:
  - jacc
params:
  species: electron
  errors_seed: null
  seed: 0
  settle: 0.0
"""


def write_plugin(root) -> pathlib.Path:
    """Write the Badger plugin folder ``root/environments/jacc_iota_twin`` (``root`` is a
    ``BADGER_PLUGIN_ROOT``); returns the folder."""
    folder = pathlib.Path(root) / "environments" / Environment.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text('"""The IOTA twin (jacc_twin.badger)."""\n\n'
                                        "from jacc_twin.badger import Environment  # noqa: F401\n")
    (folder / "configs.yaml").write_text(_CONFIGS)
    return folder
