"""`TwinIOC`: the twin behind an EPICS soft IOC (Channel Access, caproto).

PVs are ``<prefix><DEVICE>:<FIELD>`` (`jacc_twin.control._pvs`: every variable of the names
table, a STATUS per device with settings, the orbit per plane, ``TBT:ACQUIRE``) with units,
control, display and alarm limits, as caproto records (``.HOPR``, ``.HIHI``... answer).
Monitors update at the devices' own rates (the twin's events, `jacc_twin.control._ioc_bridge`);
a write to a setting goes through the twin's checks (limits, a finite number, a stable
machine) and, refused, leaves the twin unchanged and the PV in a WRITE alarm (MAJOR);
``<prefix>DEBUG:*`` channels answer model quantities on the fly (`jacc_twin.control._debug`).

The IOC binds to 127.0.0.1 unless ``EPICS_CAS_INTF_ADDR_LIST`` (or ``interfaces``) says
otherwise, on ``EPICS_CAS_SERVER_PORT`` (else ``EPICS_CA_SERVER_PORT``, else 5064). It runs in
a thread of its own (an asyncio loop): ``start()``, ``stop()``, or ``with TwinIOC(twin):``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import threading

import numpy as np

from ._debug import DebugModel, PVDatabase
from ._ioc_bridge import TwinBridge
from ._ioc_groups import device_group_class
from ._ioc_writer import SerialWriter
from ._pvs import DEFAULT_PREFIX, TBT_MAX_TURNS, catalogue

__all__ = ["TwinIOC", "server_interfaces"]

log = logging.getLogger("jacc_twin.ioc")


class _BeaconFilter(logging.Filter):
    """Drops caproto's report of a beacon nobody receives (no CA repeater on a loopback-only
    host); every other server message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to send beacon")


_BEACON_FILTER = _BeaconFilter()


def server_interfaces(interfaces=None) -> list[str]:
    """Interfaces the IOC binds: given, else ``EPICS_CAS_INTF_ADDR_LIST``, else loopback."""
    if interfaces:
        return list(interfaces)
    return os.environ.get("EPICS_CAS_INTF_ADDR_LIST", "").split() or ["127.0.0.1"]


class TwinIOC:
    """A Channel Access server over ``twin`` (an `jacc_twin.iota.IotaTwin`).

    Args:
        twin: the twin (its loop is started on the wall clock by `start` if it is not running
            and ``run_loop`` is True).
        prefix: PV prefix (default ``IOTA:``).
        interfaces: addresses to bind (default: see `server_interfaces`).
        debug_prefix: the wildcard debug channels' prefix after ``prefix`` (None: none).
        run_loop: start and stop the twin's event loop with the IOC.

    Attributes:
        pvdb: the PVs by name; applied: the last accepted writes ``(variable, value)`` in order;
        n_applied, n_refused: writes accepted and refused so far; port: the TCP port.
    """

    def __init__(self, twin, prefix: str = DEFAULT_PREFIX, interfaces=None, debug_prefix: str | None = "DEBUG:",
                 run_loop: bool = True):
        self.twin, self.prefix, self.run_loop = twin, prefix, run_loop
        self.interfaces = server_interfaces(interfaces)
        self.lock = getattr(twin.loop, "_lock", threading.RLock())
        self.infos = {info.pv(prefix): info for info in catalogue()}
        by_device = collections.defaultdict(list)
        for info in self.infos.values():
            by_device[info.device].append(info)
        pvs = {}
        for device, infos in by_device.items():
            group = device_group_class(device, infos)(prefix=f"{prefix}{device}:")
            group.ioc = self
            pvs.update(group.pvdb)
        self.debug = DebugModel(twin, self.lock) if debug_prefix else None
        self.pvdb = PVDatabase(pvs, f"{prefix}{debug_prefix}" if debug_prefix else None, self.debug)
        self.applied: collections.deque = collections.deque(maxlen=100_000)
        self.n_applied = self.n_refused = 0
        self.bridge = TwinBridge(twin, self._post_threadsafe)
        self.bridge.on_tick.append(self._refresh_debug)
        self.port = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque = collections.deque()
        self._wake: asyncio.Event | None = None
        self._wake_scheduled = False
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._writer = SerialWriter(self.lock)

    # ------------------------------------------------------------------ writes from clients
    async def put(self, instance, value):
        """A client's write of a read-write PV: checked, applied to the twin, or refused.

        Writes are applied one after the other on one writer thread, in the order they came
        (the server's loop stays free to answer clients while the machine is solved)."""
        info = self.infos[instance.pvname]

        def apply():  # on the writer's thread, under the twin's lock
            v = self._check(info, value)
            if info.kind == "command":
                self.twin.measure_tbt(int(v))
            else:
                self.twin.write({info.variable: v})
            self.n_applied += 1
            self.applied.append((info.variable or info.name, v))
            return v

        try:
            v = await asyncio.wrap_future(self._writer.submit(apply))
        except Exception as err:
            self.n_refused += 1
            log.warning("refused write %s = %r: %s", instance.pvname, value, err)
            raise
        if instance.alarm.severity:
            await instance.alarm.write(status=0, severity=0)
        return v

    @staticmethod
    def _check(info, value):
        if isinstance(value, (str, bytes)) or np.ndim(value) != 0:
            raise TypeError(f"{info.name}: a write is one number, got {value!r}")
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{info.name}: {v!r} is not a finite number")
        if info.kind == "command" and not 1 <= v <= TBT_MAX_TURNS:
            raise ValueError(f"{info.name}: turns must be in [1, {TBT_MAX_TURNS}], got {v:g}")
        return int(v) if info.dtype == "int" else v

    # ------------------------------------------------------------------ updates from the twin
    def _post_threadsafe(self, name: str, value) -> None:
        """From the loop's thread: queue an update; wake the server's loop once per burst
        (one wake-up per burst, not per value: each costs a system call and the GIL)."""
        aloop = self._aloop
        inst = self.pvdb.get(f"{self.prefix}{name}")
        if inst is None or aloop is None or aloop.is_closed():
            return
        self._pending.append((inst, value))
        if not self._wake_scheduled:
            self._wake_scheduled = True
            aloop.call_soon_threadsafe(self._wake.set)

    def _refresh_debug(self) -> None:
        for ch in self.pvdb.debug_channels():
            if self._aloop is not None:
                asyncio.run_coroutine_threadsafe(ch.refresh(), self._aloop)

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._wake_scheduled = False
            while self._pending:
                inst, value = self._pending.popleft()
                try:
                    await inst.write(value, verify_value=False)
                except Exception:  # a PV that cannot take a value must not stop the others
                    log.exception("update of %s failed", inst.pvname)

    # ------------------------------------------------------------------ running
    async def _main(self) -> None:
        from caproto.asyncio.server import Context

        self._aloop, self._wake, self._stopping = asyncio.get_running_loop(), asyncio.Event(), asyncio.Event()
        ctx = Context(self.pvdb, self.interfaces)
        port = os.environ.get("EPICS_CAS_SERVER_PORT")
        if port:
            ctx.ca_server_port = int(port)
        server = asyncio.create_task(ctx.run(log_pv_names=False))
        pump = asyncio.create_task(self._pump())
        while ctx.port is None and not server.done():
            await asyncio.sleep(0.01)
        self.port = ctx.port
        if server.done():
            server.result()  # raises the server's start-up error
        await self._describe_records()
        with self.lock:
            self.bridge.attach()
            self.bridge.initial()
        self._started.set()
        await self._stopping.wait()
        self.bridge.detach()
        for task in (server, pump):
            task.cancel()
        await asyncio.gather(server, pump, return_exceptions=True)

    async def _describe_records(self) -> None:
        """Record fields that caproto does not take from the channel: EGU (units), DESC."""
        for name, info in self.infos.items():
            fields = getattr(self.pvdb[name], "field_inst", None)
            if fields is None:
                continue
            if info.unit and hasattr(fields, "engineering_units"):
                await fields.engineering_units.write(info.unit[:15])
            await fields.description.write(info.description[:40])

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:  # reported by start()
            self._error = err
            self._started.set()

    def start(self, timeout: float = 30.0) -> "TwinIOC":
        """Serve in a background thread; returns once the server listens."""
        if self._thread is not None:
            raise RuntimeError("TwinIOC.start: already serving")
        if self.interfaces == ["127.0.0.1"]:
            os.environ.setdefault("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO")
            os.environ.setdefault("EPICS_CAS_BEACON_ADDR_LIST", "127.0.0.1")
            logging.getLogger("caproto.ctx").addFilter(_BEACON_FILTER)
        if self.debug is not None:
            self.debug.table()  # the model's Twiss program compiles now, not in a client's search
        self._thread = threading.Thread(target=self._thread_main, name="jacc-twin-ioc", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout) or self._error is not None:
            raise RuntimeError(f"TwinIOC: the server did not start: {self._error!r}")
        if self.run_loop and not self.twin.loop.running:
            self.twin.loop.start()
        log.info("serving %d PVs with prefix %r on %s port %s (debug channels %s*)", len(self.infos), self.prefix,
                 ", ".join(self.interfaces), self.port, self.pvdb.debug_prefix or "off")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (and the twin's loop, if `start` started it)."""
        if self.run_loop and self.twin.loop.running:
            self.twin.loop.stop()
        if self._aloop is not None and self._thread is not None:
            self._aloop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)
        self._writer.close()
        self._thread = None
        self._aloop = None

    def __enter__(self) -> "TwinIOC":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
