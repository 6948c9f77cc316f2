"""``jacc-twin run``: the IOTA twin on the simulated clock, a corrector step part-way, a report.

    jacc-twin run [--duration 60] [--seed 0] [--errors-seed N] [--json OUT] [--out DIR]

The twin runs for ``--duration`` simulated seconds with every stream on; half-way, one
corrector's current steps (``--corrector``, ``--delta`` [A]). The report (text on stdout,
JSON in ``--json``, plots in ``--out``) gives the orbit change at the BPMs against the
orbit response matrix's prediction (`jacc.calibrate`), the tunes from NAFF on 1024 turns of
turn-by-turn BPM data against the model's (`jacc.twiss`), and the events per stream.
"""

from __future__ import annotations

import collections
import json
import pathlib
import threading
import time

import numpy as np

__all__ = ["add_run", "run_twin", "report"]


def add_run(sub) -> None:
    p = sub.add_parser("run", help="run the IOTA twin on the simulated clock and report",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0, metavar="SECONDS", help="simulated time [s]")
    p.add_argument("--seed", type=int, default=0, help="seed of the devices' noise")
    p.add_argument("--errors-seed", type=int, default=None, help="seed of the machine's faults (default: none)")
    p.add_argument("--species", default="electron", choices=["electron", "proton"])
    p.add_argument("--corrector", default="HCA1R", help="corrector supply that steps half-way")
    p.add_argument("--delta", type=float, default=0.05, help="its current step [A]")
    p.add_argument("--turns", type=int, default=1024, help="turns of turn-by-turn data for NAFF")
    p.add_argument("--json", default="results/twin_run.json", metavar="OUT", help="JSON report")
    p.add_argument("--out", default="results", metavar="DIR", help="folder of the plots")
    p.set_defaults(func=_main)


def run_twin(duration: float = 60.0, seed: int = 0, errors_seed=None, species: str = "electron",
             corrector: str = "HCA1R", delta: float = 0.05, turns: int = 1024) -> dict:
    """Run the scenario; returns the report (a JSON-able dict, plus ``_arrays`` for plots)."""
    from .iota import IotaTwin
    from .naff import naff_tunes

    w0 = time.perf_counter()
    twin = IotaTwin(species=species, errors_seed=errors_seed, seed=seed, record=False)
    w_build = time.perf_counter() - w0
    # the model optics (a Twiss with chromaticity: the largest program of the run) compile
    # on the second core while the twin runs on this one (XLA releases Python's lock)
    optics_ready = threading.Thread(target=twin.ring.optics, args=(twin.vector(),),
                                    name="jacc-twin-optics", daemon=True)
    optics_ready.start()
    twin.run_until(duration / 2)
    before_true, before_1hz = twin.orbit(), twin.bpm_readings("orbit_1hz")
    ps = twin.devices[corrector]
    k0 = ps.strength()
    t_w = time.perf_counter()
    twin.write({f"{corrector}:SETTING": ps.setpoint + delta})
    write_ms = 1e3 * (time.perf_counter() - t_w)
    dkick = ps.strength() - k0
    twin.run_until(duration)
    after_true, after_1hz = twin.orbit(), twin.bpm_readings("orbit_1hz")
    change = np.concatenate(after_true) - np.concatenate(before_true)
    measured = np.concatenate(after_1hz) - np.concatenate(before_1hz)
    ring = twin.ring
    plane = 0 if ps.parameter.startswith("hk") else 1
    col = plane * len(ring.correctors) + ring.correctors.index(
        next(e for (e, f), k in ring.corrector_knobs.items() if k == ps.parameter))
    predicted = ring.orm(twin.vector())[:, col] * dkick
    tbt = twin.measure_tbt(turns)
    x = np.array([tbt[b.name][0] for b in twin._bpms]).T
    y = np.array([tbt[b.name][1] for b in twin._bpms]).T
    qx, qy = naff_tunes(x, y)
    optics_ready.join()
    model = twin.optics()
    counts = collections.Counter()
    for (dev, stream), n in twin.loop.counts.items():
        counts[f"{type(twin.devices[dev]).__name__.lower() if dev in twin.devices else 'model'}.{stream}"] += n
    return {
        "species": species, "seed": seed, "errors_seed": errors_seed, "simulated_s": twin.t,
        "wall_s": time.perf_counter() - w0, "build_s": w_build, "write_to_orbit_ms": write_ms,
        "corrector": corrector, "delta_current_A": delta, "delta_kick_rad": dkick,
        "events_per_stream": dict(sorted(counts.items())), "events_total": int(sum(counts.values())),
        "orbit_change_rms_m": float(np.sqrt(np.mean(change ** 2))),
        "orbit_change_max_abs_m": float(np.max(np.abs(change))),
        "orbit_change_vs_orm_max_abs_m": float(np.max(np.abs(change - predicted))),
        "orbit_change_measured_vs_orm_max_abs_m": float(np.max(np.abs(measured - predicted))),
        "naff_tunes": {"qx": qx, "qy": qy},
        "model_tunes": {"qx": model["qx"], "qy": model["qy"]},
        "model_chromaticity": {"dqx": model["dqx"], "dqy": model["dqy"]},
        "naff_vs_model_fractional": {"qx": qx - model["qx"] % 1.0, "qy": qy - model["qy"] % 1.0},
        "n_solves": twin.n_solves,
        "_arrays": {"s": ring.bpm_s, "change": change, "measured": measured, "predicted": predicted,
                    "tbt_x": x[:, 0], "bpm": twin._bpms[0].name},
    }


def report(r: dict) -> str:
    """The text report."""
    ev = "\n".join(f"  {k:>22s}: {n}" for k, n in r["events_per_stream"].items())
    return (f"IOTA twin ({r['species']}s, errors seed {r['errors_seed']}, noise seed {r['seed']}): "
            f"{r['simulated_s']:.1f} s simulated in {r['wall_s']:.1f} s wall (twin built in {r['build_s']:.1f} s)\n"
            f"corrector {r['corrector']} +{r['delta_current_A']} A (kick {r['delta_kick_rad'] * 1e6:.3f} urad) "
            f"at t = {r['simulated_s'] / 2:.1f} s; write to orbit {r['write_to_orbit_ms']:.2f} ms\n"
            f"  orbit change: rms {r['orbit_change_rms_m'] * 1e6:.3f} um, max {r['orbit_change_max_abs_m'] * 1e6:.3f} um\n"
            f"  vs ORM prediction (jacc.calibrate): max |diff| {r['orbit_change_vs_orm_max_abs_m']:.2e} m true orbit, "
            f"{r['orbit_change_measured_vs_orm_max_abs_m']:.2e} m from 1 Hz BPM readings\n"
            f"tunes: NAFF ({len(r['_arrays']['tbt_x'])} turns) qx = {r['naff_tunes']['qx']:.7f}, "
            f"qy = {r['naff_tunes']['qy']:.7f}; model (jacc.twiss) qx = {r['model_tunes']['qx']:.7f}, "
            f"qy = {r['model_tunes']['qy']:.7f}; chromaticity {r['model_chromaticity']['dqx']:.4f}, "
            f"{r['model_chromaticity']['dqy']:.4f}\n"
            f"events per stream ({r['events_total']} in all, {r['n_solves']} machine solves):\n{ev}")


def plot(r: dict, out: pathlib.Path) -> pathlib.Path:
    """Orbit change against the ORM prediction (x, y) and a BPM's turn-by-turn data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = r["_arrays"]
    nb = len(a["s"])
    fig, ax = plt.subplots(3, 1, figsize=(10, 9), constrained_layout=True)
    for i, lab in enumerate("xy"):
        sl = slice(i * nb, (i + 1) * nb)
        ax[i].plot(a["s"], 1e6 * a["predicted"][sl], "-", color="0.6", lw=3, label="ORM prediction (jacc.calibrate)")
        ax[i].plot(a["s"], 1e6 * a["change"][sl], "o", ms=5, label="twin: closed-orbit change")
        ax[i].plot(a["s"], 1e6 * a["measured"][sl], "x", ms=6, label="twin: 1 Hz BPM readings")
        ax[i].set_ylabel(f"d{lab} [um]")
        ax[i].legend(fontsize=8)
    ax[1].set_xlabel("s [m]")
    ax[0].set_title(f"{r['corrector']} +{r['delta_current_A']} A ({r['delta_kick_rad'] * 1e6:.2f} urad)")
    n = min(200, len(a["tbt_x"]))
    ax[2].plot(1e6 * (a["tbt_x"][:n] - a["tbt_x"].mean()), ".-", lw=0.6, ms=3)
    ax[2].set_xlabel("turn")
    ax[2].set_ylabel(f"{a['bpm']} x [um]")
    ax[2].set_title(f"turn by turn after a kick (first {n} turns): NAFF qx = {r['naff_tunes']['qx']:.6f}, "
                    f"model {r['model_tunes']['qx'] % 1:.6f}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "twin_run.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _main(args) -> int:
    r = run_twin(args.duration, args.seed, args.errors_seed, args.species, args.corrector, args.delta, args.turns)
    print(report(r))
    png = plot(r, pathlib.Path(args.out))
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: v for k, v in r.items() if k != "_arrays"}, indent=1) + "\n")
    print(f"report written to {path}, plot to {png}")
    return 0
