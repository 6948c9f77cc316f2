"""``jacc-twin serve``, ``jacc-twin pvs``, ``jacc-twin devices``: the twin behind EPICS and its names.

    jacc-twin serve [--prefix IOTA:] [--pva] [--errors-seed N] [--seed 0] [--duration S]
    jacc-twin pvs [--prefix IOTA:]
    jacc-twin devices

``serve`` runs the IOTA twin paced to the wall clock behind the Channel Access IOC (and PV
Access with ``--pva``) until SIGINT or SIGTERM (or ``--duration`` wall seconds), then stops
the servers and the twin and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

__all__ = ["add_serve", "add_pvs", "add_devices", "serve"]


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve the IOTA twin over EPICS (Channel Access; --pva: PV Access too)",
                       description="Run the IOTA twin paced to the wall clock behind an EPICS soft IOC "
                                   "until interrupted (SIGINT or SIGTERM). Binds to 127.0.0.1 unless "
                                   "EPICS_CAS_INTF_ADDR_LIST (EPICS_PVAS_INTF_ADDR_LIST) says otherwise; "
                                   "port from EPICS_CAS_SERVER_PORT (EPICS_PVAS_SERVER_PORT).")
    p.add_argument("--prefix", default="IOTA:", help="PV prefix (default IOTA:)")
    p.add_argument("--pva", action="store_true", help="serve the same PVs over PV Access (p4p)")
    p.add_argument("--seed", type=int, default=0, help="seed of the devices' noise")
    p.add_argument("--errors-seed", type=int, default=None, help="seed of the machine's faults (default: none)")
    p.add_argument("--species", default="electron", choices=["electron", "proton"])
    p.add_argument("--bpm-noise", type=float, default=2e-6, help="BPM noise per orbit reading [m]")
    p.add_argument("--no-debug", action="store_true", help="no wildcard <prefix>DEBUG:* channels")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many wall seconds (default: run until interrupted)")
    p.set_defaults(func=serve)


def add_pvs(sub) -> None:
    p = sub.add_parser("pvs", help="print every PV served: name, type, units, access",
                       description="Every PV that `jacc-twin serve` serves, one a line: name, type, units, "
                                   "read-only or read-write; then the wildcard debug channels.")
    p.add_argument("--prefix", default="IOTA:", help="PV prefix (default IOTA:)")
    p.set_defaults(func=_pvs)


def add_devices(sub) -> None:
    p = sub.add_parser("devices", help="print the device table: ACNET name, PV name, lattice element",
                       description="The twin's names table (jacc_twin/data/devices.csv): one variable a "
                                   "line with its ACNET name and property, EPICS PV, lattice element and "
                                   "knob, unit, range and access.")
    p.add_argument("--prefix", default="IOTA:", help="PV prefix (default IOTA:)")
    p.set_defaults(func=_devices)


def _pvs(args) -> int:
    from .control._pvs import table_text

    print(table_text(args.prefix))
    print(f"{args.prefix}DEBUG:<COLUMN>:<ELEMENT>  double       -      read-only  (any Twiss column at an "
          f"element's exit, e.g. {args.prefix}DEBUG:BETX:IBPMA1)")
    print(f"{args.prefix}DEBUG:<QX|QY|DQX|DQY|MOMENTUM_COMPACTION>  double  -  read-only")
    return 0


def _devices(args) -> int:
    from .names import variables

    rows = [("ACNET", "PROPERTY", "PV", "ELEMENT", "KNOB", "UNIT", "RANGE", "ACCESS")]
    for v in variables().values():
        rng = "" if v.value_range is None else f"[{v.low:g}, {v.high:g}]"
        rows.append((v.acnet, v.acnet_property, v.pv(args.prefix), v.element or "-", v.parameter or "-",
                     v.unit or "-", rng or "-", "read-only" if v.read_only else "read-write"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def serve(args) -> int:
    """``jacc-twin serve``: build the twin, serve it, wait for a signal, stop cleanly."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    log = logging.getLogger("jacc_twin.serve")
    stop = threading.Event()

    def _signal(signum, frame):
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _signal)
    signal.signal(signal.SIGTERM, _signal)
    from .control.epics import TwinIOC
    from .iota import IotaTwin

    t0 = time.perf_counter()
    twin = IotaTwin(species=args.species, errors_seed=args.errors_seed, seed=args.seed, bpm_noise=args.bpm_noise,
                    clock="wall", record=False)
    log.info("IOTA twin built in %.1f s", time.perf_counter() - t0)
    ioc = TwinIOC(twin, prefix=args.prefix, debug_prefix=None if args.no_debug else "DEBUG:", run_loop=False)
    pva = None
    try:
        ioc.start()
        if args.pva:
            from .control.pva import TwinPVA

            pva = TwinPVA(twin, prefix=args.prefix).start()
        twin.loop.start()
        log.info("ready: %d PVs%s; stop with Ctrl-C or SIGTERM", len(ioc.infos), " (CA and PVA)" if pva else "")
        stop.wait(args.duration)
    finally:
        twin.loop.stop()
        if pva is not None:
            pva.stop()
        ioc.stop()
    log.info("stopped after %.1f s simulated; %d writes applied, %d refused", twin.t,
             ioc.n_applied + (pva.n_applied if pva else 0), ioc.n_refused + (pva.n_refused if pva else 0))
    _exit_past_compilations(log)
    return 0


# threads that may be inside XLA's compiler, which cannot be interrupted: a process that
# finalises while one runs aborts (SIGABRT) instead of exiting
_COMPILING = ("jacc-twin-optics", "jacc-optimise")


def _exit_past_compilations(log) -> None:
    """Exit now, with status 0, when a model compilation is still running after the servers
    and the twin have stopped (a signal right after start-up); return otherwise."""
    busy = [t.name for t in threading.enumerate() if t.name in _COMPILING and t.is_alive()]
    if not busy:
        return
    log.info("not waiting for a model compilation still running (%s)", ", ".join(sorted(set(busy))))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
