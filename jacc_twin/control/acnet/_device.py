"""`DoubleDevice`: one DRF2 request read and set as a float, in the style of ACNET's Python clients."""

from __future__ import annotations

from ._parse import parse

__all__ = ["DoubleDevice"]


class DoubleDevice:
    """A device read as a float (or an array, for a range of a waveform) through an adapter.

    ``DoubleDevice('N:IHA1R.SETTING@I').read(adapter=dpm)``; ``.set(0.5, adapter=dpm)``;
    ``DoubleDevice('B:TRMH1D.COMMON@E,1D,E,10').read(adapter=dpm)`` waits for the event.

    Args:
        drf: the DRF2 request (parsed on construction: a bad one raises ``ValueError``).
        adapter: the default adapter (a `DPMAdapter`) of ``read`` and ``set``.
    """

    def __init__(self, drf: str, adapter=None):
        self.request = parse(drf)
        self.drf = drf
        self.adapter = adapter

    def _adapter(self, adapter):
        a = adapter if adapter is not None else self.adapter
        if a is None:
            raise ValueError(f"DoubleDevice({self.drf!r}): no adapter (pass adapter=DPMAdapter(twin))")
        return a

    def read(self, adapter=None, timeout: float = 10.0):
        """The value (engineering units) the request delivers."""
        value = self._adapter(adapter).read(self.request, timeout=timeout)
        return value if getattr(value, "ndim", 0) else float(value)

    def set(self, value, adapter=None) -> None:
        """Set the device's SETTING (the request's property must be SETTING)."""
        self._adapter(adapter).set(self.request, value)

    def subscribe(self, callback=None, adapter=None):
        """A `Subscription` of the request's periodic or clock-event readings."""
        return self._adapter(adapter).subscribe(self.request, callback)

    def __repr__(self) -> str:
        return f"DoubleDevice({self.request.canonical()!r})"
