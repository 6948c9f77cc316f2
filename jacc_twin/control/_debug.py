"""Wildcard debug channels: ``<prefix>DEBUG:<COLUMN>:<ELEMENT>`` (a Twiss column at the exit
of an element, e.g. ``IOTA:DEBUG:BETX:IBPMA1``) and ``<prefix>DEBUG:<SUMMARY>`` (``QX``,
``QY``, ``DQX``, ``DQY``, ``MOMENTUM_COMPACTION``), answered on the fly from the twin's model
(`jacc.twiss` of the machine now, 4D), created when a client first searches for them.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from caproto import ChannelDouble

__all__ = ["DebugModel", "DebugChannel", "PVDatabase"]

log = logging.getLogger("jacc_twin.ioc")

_SUMMARY = ("qx", "qy", "dqx", "dqy", "momentum_compaction")


class DebugModel:
    """Model quantities of the twin by name (``BETX:IBPMA1``, ``QX``); the Twiss table is
    computed once per machine setting."""

    def __init__(self, twin, lock=None):
        self.twin = twin
        self._lock = lock or threading.RLock()
        self._key, self._tw, self._first = None, None, {}

    def table(self):
        with self._lock:
            vec = self.twin.vector()
        key = vec.tobytes()
        if key != self._key:
            import jacc
            from ..ring import preset

            ring = self.twin.ring
            tw = jacc.twiss(ring.lattice_at(vec), ring.rp, method="4d", model=preset())
            if not self._first:
                self._first = {}
                for i, n in enumerate(tw.name):
                    self._first.setdefault(str(n).lower(), i)
            self._key, self._tw = key, tw
        return self._tw

    def value(self, quantity: str) -> float:
        """The value of ``quantity``; KeyError naming what is unknown."""
        tw = self.table()
        col, _, element = quantity.lower().partition(":")
        if not element:
            if col not in _SUMMARY:
                raise KeyError(f"debug channel {quantity!r}: not a summary quantity ({', '.join(_SUMMARY)}) "
                               f"and no ':<ELEMENT>'")
            return float(getattr(tw, col))
        if col not in tw.columns():
            raise KeyError(f"debug channel {quantity!r}: unknown Twiss column {col!r}")
        if element not in self._first:
            raise KeyError(f"debug channel {quantity!r}: no element {element!r} in the lattice")
        return float(np.asarray(getattr(tw, col))[self._first[element]])


class DebugChannel(ChannelDouble):
    """A read-only channel whose value is recomputed from the model at each read."""

    def __init__(self, model: DebugModel, quantity: str, **kw):
        super().__init__(value=model.value(quantity), precision=9, **kw)
        self.model, self.quantity = model, quantity

    async def verify_value(self, value):
        raise PermissionError(f"debug channel {self.quantity} is read-only")

    async def refresh(self) -> None:
        v = self.model.value(self.quantity)
        if v != self.value:
            await self.write(v, verify_value=False)

    async def read(self, data_type):
        await self.refresh()
        return await super().read(data_type)


class PVDatabase(dict):
    """The IOC's PVs by name; a name starting with ``debug_prefix`` and not served yet becomes
    a `DebugChannel` when its model quantity exists (else the name is unknown: KeyError)."""

    def __init__(self, pvs: dict, debug_prefix: str | None, model: DebugModel | None):
        super().__init__(pvs)
        self.debug_prefix, self.model = debug_prefix, model

    def __missing__(self, name: str):
        if not self.debug_prefix or not isinstance(name, str) or not name.startswith(self.debug_prefix):
            raise KeyError(name)
        quantity = name[len(self.debug_prefix):]
        if "." in quantity:  # record fields of debug channels are not served
            raise KeyError(name)
        try:
            ch = DebugChannel(self.model, quantity)
        except KeyError:
            raise
        except Exception:  # a search must not fail for the other names of its datagram
            log.exception("debug channel %s", name)
            raise KeyError(name) from None
        self[name] = ch
        return ch

    def debug_channels(self) -> list[DebugChannel]:
        return [v for v in self.values() if isinstance(v, DebugChannel)]
