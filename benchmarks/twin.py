"""Benchmark of the IOTA digital twin (`jacc_twin.iota.IotaTwin`).

- Simulated seconds per wall second with every stream on (21 BPMs at 10 Hz and 1 Hz, 20
  horizontal and 20 vertical corrector supplies and 20 quadrupole supplies reading back at
  10 Hz, DCCT, RF, timer, the model tick), without and with turn-by-turn data on request
  (1024 turns every 10 simulated seconds); events per wall second.
- Latency from a setpoint change to the first BPM reading that reflects it (wall time,
  median and 99th percentile): synchronous policy (write, then read the BPM) and batched
  policy (write, then run the loop until the BPM's 10 Hz reading has changed).
- Building the twin in a fresh process (compilation of the orbit program, cache off).

Targets: faster than real time by 10x with every stream on; setpoint-to-orbit under 10 ms.

    python benchmarks/twin.py [--duration 30] [--writes 200] --json results/twin.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import cold_compilation, machine, print_table, write_json

cold_compilation()


def throughput(twin_cls, duration: float, tbt_every: float | None) -> dict:
    twin = twin_cls(errors_seed=1, record=False)
    twin.step(1.0)  # warm: first readings, first events
    if tbt_every:
        twin.measure_tbt(1024)  # compiles the turn-by-turn program (once per process)
    n0 = sum(twin.loop.counts.values())
    t0 = time.perf_counter()
    t_end = twin.t + duration
    while twin.t < t_end - 1e-9:
        twin.run_until(min(t_end, twin.t + (tbt_every or duration)))
        if tbt_every:
            twin.measure_tbt(1024)
    wall = time.perf_counter() - t0
    n = sum(twin.loop.counts.values()) - n0
    return {"simulated_s": duration, "wall_s": wall, "speed": duration / wall, "events": n,
            "events_per_s": n / wall}


def latency_sync(twin_cls, writes: int) -> np.ndarray:
    twin = twin_cls(errors_seed=1, record=False)
    out = []
    for i in range(writes):
        t0 = time.perf_counter()
        twin.write({"HCA1R:SETTING": 0.1 * (i % 2)})
        twin.read("IBPMB1R:X")
        out.append(time.perf_counter() - t0)
    return np.array(out)


def latency_batched(twin_cls, writes: int) -> np.ndarray:
    twin = twin_cls(errors_seed=1, record=False, policy="batched")
    bpm = twin.devices["IBPMB1R"]
    twin.step(0.05)
    out = []
    for i in range(writes):
        before = bpm.x
        t0 = time.perf_counter()
        twin.write({"HCA1R:SETTING": 0.1 * ((i + 1) % 2)})
        while bpm.x == before:
            twin.loop.run_until(twin.loop.next_time() + 1e-12)
        out.append(time.perf_counter() - t0)
    return np.array(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=30.0, help="simulated seconds per throughput run")
    p.add_argument("--writes", type=int, default=200, help="writes per latency measurement")
    p.add_argument("--json", default=None, metavar="OUT")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    from jacc_twin.iota import IotaTwin

    IotaTwin(record=False)
    build = time.perf_counter() - t0
    res = {"machine": machine(), "first_twin_s": build}
    res["streams"] = throughput(IotaTwin, args.duration, None)
    res["streams_tbt"] = throughput(IotaTwin, args.duration, 10.0)
    lat = {"synchronous": latency_sync(IotaTwin, args.writes), "batched": latency_batched(IotaTwin, args.writes)}
    res["latency"] = {k: {"median_ms": 1e3 * float(np.median(v)), "p99_ms": 1e3 * float(np.percentile(v, 99)),
                          "n": int(v.size)} for k, v in lat.items()}
    rows = [["every stream", res["streams"]["speed"], res["streams"]["events_per_s"], ">= 10x"],
            ["every stream + TbT (1024 turns / 10 s)", res["streams_tbt"]["speed"],
             res["streams_tbt"]["events_per_s"], ">= 10x"]]
    print_table(f"IOTA twin throughput ({args.duration:g} s simulated; first twin in a fresh process "
                f"{build:.1f} s, cache off)", ["run", "simulated s / wall s", "events / wall s", "target"], rows)
    rows = [[k, v["median_ms"], v["p99_ms"], v["n"], "< 10 ms"] for k, v in res["latency"].items()]
    print_table("setpoint change -> first BPM reading that reflects it (wall time)",
                ["policy", "median [ms]", "p99 [ms]", "writes", "target"], rows)
    write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
