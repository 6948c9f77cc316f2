"""`TwinPVA`: the twin's PVs over PV Access (p4p, the optional ``pva`` extra).

The same PVs as the Channel Access IOC (`jacc_twin.control._pvs`) as normative types:
NTScalar (``value``, ``alarm``, ``timeStamp``, ``display`` with units and limits, ``control``
limits, ``valueAlarm``) for scalars, NTScalarArray for waveforms, NTEnum-like status as an
NTScalar string. Updates follow the twin's events (`jacc_twin.control._ioc_bridge`); a
refused write answers the client with the error, and leaves the value unchanged with the
alarm MAJOR and its message.

Binds to 127.0.0.1 unless ``EPICS_PVAS_INTF_ADDR_LIST`` (or ``conf``) says otherwise;
``EPICS_PVAS_SERVER_PORT`` and the other ``EPICS_PVAS_*`` variables are honoured.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

import numpy as np

from ._ioc_bridge import TwinBridge
from ._pvs import DEFAULT_PREFIX, TBT_MAX_TURNS, catalogue

__all__ = ["TwinPVA"]

log = logging.getLogger("jacc_twin.pva")


def _nt(info):
    from p4p.nt import NTScalar

    if info.dtype == "enum":
        return NTScalar("s")
    code = "ad" if info.max_length > 1 else ("l" if info.dtype == "int" else "d")
    return NTScalar(code, display=True, control=info.max_length == 1, valueAlarm=info.max_length == 1)


def _initial(nt, info):
    now = time.time()
    if info.dtype == "enum":
        return nt.wrap("READY", timestamp=now)
    if info.max_length > 1:
        v = nt.wrap(np.zeros(0), timestamp=now)
    else:
        v = nt.wrap(0 if info.dtype == "int" else 0.0, timestamp=now)
        lim = info.limits
        if lim:
            v["control.limitLow"], v["control.limitHigh"] = lim["lower_ctrl_limit"], lim["upper_ctrl_limit"]
            v["valueAlarm.lowAlarmLimit"], v["valueAlarm.highAlarmLimit"] = info.low, info.high
            v["valueAlarm.lowWarningLimit"] = lim["lower_warning_limit"]
            v["valueAlarm.highWarningLimit"] = lim["upper_warning_limit"]
    v["display.units"] = info.unit
    v["display.description"] = info.description[:80]
    if info.limits:
        v["display.limitLow"], v["display.limitHigh"] = info.low, info.high
    return v


class TwinPVA:
    """A PV Access server over ``twin`` (an `jacc_twin.iota.IotaTwin`).

    Args:
        twin: the twin (its event loop is run by the caller or by a `TwinIOC`).
        prefix: PV prefix (default ``IOTA:``).
        conf: ``EPICS_PVAS_*`` settings for p4p's server (default: loopback, and the environment).
        isolate: p4p's isolated test server (loopback, a free port; ``conf()`` for clients).

    Attributes:
        pvs: the p4p ``SharedPV`` by name; server: the p4p server; n_applied, n_refused.
    """

    def __init__(self, twin, prefix: str = DEFAULT_PREFIX, conf: dict | None = None, isolate: bool = False):
        self.twin, self.prefix = twin, prefix
        self.lock = getattr(twin.loop, "_lock", threading.RLock())
        self.conf, self.isolate = conf, isolate
        self.infos = {info.pv(prefix): info for info in catalogue()}
        self.pvs: dict = {}
        self.n_applied = self.n_refused = 0
        self.bridge = TwinBridge(twin, self._post)
        self.server = None

    def _handler(self, info):
        outer = self

        class Handler:
            def put(self, pv, op):
                outer._put(info, pv, op)

        return Handler()

    def _put(self, info, pv, op) -> None:
        raw = op.value()
        value = raw.raw.value if hasattr(raw, "raw") else raw["value"] if hasattr(raw, "keys") else raw
        try:
            if isinstance(value, (str, bytes)) or np.ndim(value) != 0:
                raise TypeError(f"{info.name}: a write is one number, got {value!r}")
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(f"{info.name}: {v!r} is not a finite number")
            with self.lock:
                if info.kind == "command":
                    if not 1 <= v <= TBT_MAX_TURNS:
                        raise ValueError(f"{info.name}: turns must be in [1, {TBT_MAX_TURNS}], got {v:g}")
                    self.twin.measure_tbt(int(v))
                else:
                    self.twin.write({info.variable: v})
        except Exception as err:
            self.n_refused += 1
            log.warning("refused write %s = %r: %s", info.pv(self.prefix), value, err)
            pv.post(pv.current(), severity=2, message=f"write refused: {err}"[:200], timestamp=time.time())
            op.done(error=str(err))
            return
        self.n_applied += 1
        pv.post(int(v) if info.dtype == "int" else v, severity=0, message="", timestamp=time.time())
        op.done()

    def _post(self, name: str, value) -> None:
        pv = self.pvs.get(f"{self.prefix}{name}")
        if pv is not None:
            if isinstance(value, np.ndarray):
                value = np.asarray(value, float)
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                value = int(value)
            elif not isinstance(value, str):
                value = float(value)
            pv.post(value, timestamp=time.time())

    def _build(self) -> dict:
        from p4p.server.thread import SharedPV

        for name, info in self.infos.items():
            nt = _nt(info)
            handler = None if info.read_only else self._handler(info)
            self.pvs[name] = SharedPV(nt=nt, initial=_initial(nt, info), handler=handler)
        return self.pvs

    def start(self) -> "TwinPVA":
        """Build the PVs and serve them (p4p runs its own threads)."""
        from p4p.server import Server, StaticProvider

        provider = StaticProvider("jacc-twin")
        for name, pv in self._build().items():
            provider.add(name, pv)
        conf = dict(self.conf or {})
        if not self.isolate and "EPICS_PVAS_INTF_ADDR_LIST" not in conf:
            conf.setdefault("EPICS_PVAS_INTF_ADDR_LIST", os.environ.get("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1"))
        self.server = Server(providers=[provider], isolate=self.isolate, **({} if self.isolate else {"conf": conf}))
        with self.lock:
            self.bridge.attach()
            self.bridge.initial()
        log.info("serving %d PVs over PV Access with prefix %r (%s)", len(self.pvs), self.prefix,
                 ", ".join(f"{k}={v}" for k, v in sorted(self.server.conf().items()) if "ADDR" in k or "PORT" in k))
        return self

    def client_conf(self) -> dict:
        """Settings for a p4p client ``Context('pva', conf=..., useenv=False)`` of this server."""
        return self.server.conf()

    def stop(self) -> None:
        self.bridge.detach()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> "TwinPVA":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
