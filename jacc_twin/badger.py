"""A Badger environment over the twin's LUME face.

Badger (SLAC's optimisation GUI) loads environments as plugins: a class named
``Environment`` with ``name``, ``variables`` (name -> [low, high]), ``observables``, and the
methods ``get_variables``, ``set_variables``, ``get_observables``, ``reset_environment``.
This module is such a plugin; when Badger is installed the class derives from Badger's own
``Environment`` base, otherwise it stands alone with the same methods.
"""

from __future__ import annotations

from .names import variables

try:  # pragma: no cover - Badger is optional
    from badger import environment as _badger_env

    _Base = _badger_env.Environment
except ImportError:  # Badger not installed: the same interface, standalone
    _Base = object

__all__ = ["Environment"]


class Environment(_Base):
    """The IOTA twin as a Badger environment.

    Args:
        twin: an `IotaTwin` (default: a fresh electron twin without faults).
        observables: names of the readings offered as observables (default: every scalar
            reading and derived value of the name table).
    """

    name = "jacc_iota_twin"

    def __init__(self, twin=None, observables=None, **kw):
        if _Base is not object:
            super().__init__(**kw)
        from .iota import IotaTwin
        from .lume import TwinLUMEModel

        self._model = TwinLUMEModel(twin if twin is not None else IotaTwin())
        table = variables()
        self._variables = {v.variable: [v.low, v.high] for v in table.values() if v.kind == "setting"}
        self._observables = list(observables) if observables is not None else [
            v.variable for v in table.values() if v.kind in ("reading", "derived")]

    @property
    def variables(self) -> dict:
        """Settable variables and their ranges ``[low, high]``."""
        return dict(self._variables)

    @property
    def observables(self) -> list[str]:
        return list(self._observables)

    def get_variables(self, variable_names: list[str]) -> dict:
        return self._model.get(list(variable_names))

    def set_variables(self, variable_inputs: dict) -> None:
        self._model.set(dict(variable_inputs))

    def get_observables(self, observable_names: list[str]) -> dict:
        unknown = [n for n in observable_names if n not in self._observables]
        if unknown:
            raise ValueError(f"unknown observables {unknown}; observables: {self._observables}")
        return self._model.get(list(observable_names))

    def reset_environment(self) -> None:
        self._model.reset()
