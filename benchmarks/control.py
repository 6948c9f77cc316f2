"""Control-system front ends: Channel Access write -> BPM monitor latency, PV reads per second,
DRF2 requests parsed per second.

    python benchmarks/control.py [--writes 200] [--reads-s 3] --json results/control.json

The IOC serves the IOTA twin paced to the wall clock (BPM noise off, so that a BPM update
reflects a write exactly when its value changes) on loopback; the client is caproto's
threading client in the same process. Latency: from the write (issued without waiting for
its acknowledgement, at a random phase of the BPMs' 10 Hz cycle) to the first ``ORBIT:X``
monitor update that differs from the orbit before it: the BPMs' own cadence alone gives a
median of 50 ms and a p99 of 99 ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, print_table, write_json  # noqa: E402

DRF_REQUESTS = ["M:OUTTMP", "N:IHA1R.SETTING@I", "M|OUTTMP[]@e,02", "M:OUTTMP@p,1000",
                "B:TRMH1D.COMMON@E,1D,E,10", "M_OUTTMP.SET[3:7].RAW@Q,5H,FALSE", "M:OUTTMP@S,G:STATE,5,100,>="]


def loopback_env() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(EPICS_CA_ADDR_LIST="127.0.0.1", EPICS_CA_AUTO_ADDR_LIST="NO",
                      EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_SERVER_PORT=str(port),
                      EPICS_CAS_INTF_ADDR_LIST="127.0.0.1")


def write_latency(ctx, twin, writes: int) -> np.ndarray:
    """Seconds from a corrector write to the first ORBIT:X update that reflects it."""
    sp, orbit = ctx.get_pvs("IOTA:HCA1R:SETTING", "IOTA:ORBIT:X", timeout=5.0)
    for pv in (sp, orbit):
        pv.wait_for_connection(timeout=5.0)
    cond = threading.Condition()
    last = {"x": None, "t": 0.0}

    def on_orbit(sub, response):
        with cond:
            last["x"], last["t"] = np.array(response.data), time.perf_counter()
            cond.notify_all()

    sub = orbit.subscribe()
    sub.add_callback(on_orbit)
    lat = []
    currents = (0.05, -0.05)
    rng = np.random.default_rng(0)
    for i in range(writes):
        with cond:
            cond.wait_for(lambda: last["x"] is not None, timeout=5.0)
        time.sleep(rng.uniform(0.0, 0.1))  # writes at random phases of the 10 Hz BPM cycle
        with cond:
            before = last["x"]
        t0 = time.perf_counter()
        sp.write(currents[i % 2], wait=False)
        with cond:
            ok = cond.wait_for(lambda: last["t"] > t0 and not np.array_equal(last["x"], before), timeout=5.0)
            if ok:
                lat.append(last["t"] - t0)
    sub.clear()
    return np.array(lat)


def read_rate(ctx, seconds: float) -> float:
    (pv,) = ctx.get_pvs("IOTA:IBPMA1:X", timeout=5.0)
    pv.wait_for_connection(timeout=5.0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pv.read(timeout=5.0)
        n += 1
    return n / (time.perf_counter() - t0)


def parse_rate(seconds: float = 1.0) -> float:
    from jacc_twin.control.acnet import parse

    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for text in DRF_REQUESTS:
            parse(text)
        n += len(DRF_REQUESTS)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--writes", type=int, default=200, help="writes of the latency measurement")
    p.add_argument("--reads-s", type=float, default=3.0, help="seconds of PV reads")
    p.add_argument("--json", default=None, metavar="OUT")
    args = p.parse_args(argv)
    loopback_env()
    from caproto.threading.client import Context

    from jacc_twin.control.epics import TwinIOC
    from jacc_twin.iota import IotaTwin

    res = {"machine": machine(), "drf2_parses_per_s": parse_rate()}
    t0 = time.perf_counter()
    twin = IotaTwin(bpm_noise=0.0, supply_noise=0.0, record=False, clock="wall")
    ioc = TwinIOC(twin).start()
    res["ioc_start_s"] = time.perf_counter() - t0
    ctx = Context()
    try:
        lat = write_latency(ctx, twin, args.writes)
        res["write_to_bpm_monitor"] = {"median_ms": 1e3 * float(np.median(lat)),
                                       "p99_ms": 1e3 * float(np.percentile(lat, 99)), "n": int(lat.size),
                                       "missed": args.writes - int(lat.size)}
        res["pv_reads_per_s"] = read_rate(ctx, args.reads_s)
    finally:
        ctx.disconnect()
        ioc.stop()
    w = res["write_to_bpm_monitor"]
    print_table("control-system front ends (loopback, caproto client in the same process; BPMs at 10 Hz)",
                ["quantity", "value"],
                [["CA write -> first BPM monitor update, median [ms]", w["median_ms"]],
                 ["CA write -> first BPM monitor update, p99 [ms]", w["p99_ms"]],
                 ["writes measured (missed)", f"{w['n']} ({w['missed']})"],
                 ["CA reads per second (one client, round trips)", res["pv_reads_per_s"]],
                 ["DRF2 requests parsed per second", res["drf2_parses_per_s"]],
                 ["twin + IOC start [s]", res["ioc_start_s"]]])
    write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
