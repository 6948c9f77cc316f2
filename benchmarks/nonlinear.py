"""Frequency-map and dynamic-aperture scans: JACC against xtrack (+ nafflib) on the same grids.

    python benchmarks/nonlinear.py --lattice ring.madx --json results/nonlinear.json \
        [--knob k2f=6 --knob k2d=-10] [--particles 10000 --turns 1024] [--quick]

Frequency map: ``--particles`` initial conditions on an x-y grid, ``--turns`` turns, tunes of
both halves of the run. JACC: `jacc.nonlinear.frequency_map` (tracking with turn-by-turn
coordinates, NAFF in JAX batched with vmap). Peer: xtrack's tracking with its turn-by-turn
monitor, then ``nafflib.tune`` per particle, plane and half. Dynamic aperture: a polar grid
(``--radii`` x ``--angles``) tracked for ``--da-turns``; the DA per ray (last radius before the
first loss) of both codes is compared in grid steps. Both codes use their default models
(JACC ``Xsuite()``), one CPU thread each; each timing is one full scan after a first call
that compiles, measured in alternation and reported as the median of the per-round ratios.
``--knob NAME=VALUE`` sets a MAD-X knob on both sides (the default FODO ring's sextupoles
``k2f, k2d`` scaled by 20 bring its DA to about 3 cm, below xtrack's global 1 m limit).
"""

from __future__ import annotations

import argparse
import sys
import time

from common import (DEFAULT_FODO, cold_compilation, load_madx, machine, paired_times, peer_call, print_table,
                    single_thread_jax, write_json, xtrack_line)

single_thread_jax()
cold_compilation()

import numpy as np  # noqa: E402

import jacc  # noqa: E402
from jacc.nonlinear import dynamic_aperture, frequency_map, polar_grid  # noqa: E402

DEFAULT_KNOBS = ("k2f=6.0", "k2d=-10.0")


def fma_grid(n: int, amp: float) -> np.ndarray:
    side = int(np.ceil(np.sqrt(n)))
    a = np.linspace(amp / side, amp, side)
    x, y = np.meshgrid(a, a)
    g = np.zeros((side * side, 6))
    g[:, 0], g[:, 2] = x.ravel(), y.ravel()
    return g[:n]


def xtrack_particles(xt, rp, x0):
    return xt.Particles(mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c, x=x0[:, 0], px=x0[:, 1], y=x0[:, 2],
                        py=x0[:, 3])


def xtrack_fma(line, xt, rp, grid, n_turns):
    import nafflib

    p = xtrack_particles(xt, rp, grid)
    line.track(p, num_turns=n_turns, turn_by_turn_monitor=True)
    mon = line.record_last_track
    h = n_turns // 2

    def tune(sig):
        return abs(nafflib.tune(sig - sig.mean())) if np.all(np.isfinite(sig)) else np.nan

    return np.array([[tune(mon.x[i, :h]), tune(mon.y[i, :h]), tune(mon.x[i, h:]), tune(mon.y[i, h:])]
                     for i in range(len(grid))])


def xtrack_da_steps(line, xt, rp, radii, angles, n_turns):
    p = xtrack_particles(xt, rp, polar_grid(radii, angles))
    line.track(p, num_turns=n_turns)
    p.sort(interleave_lost_particles=True)
    lost = ~(p.state > 0).reshape(len(angles), len(radii))
    return np.where(lost.any(-1), lost.argmax(-1), len(radii)) - 1


def first_call(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_fma(results, lat, rp, line, xt, args):
    grid = fma_grid(args.particles, args.fma_amp)

    def ours():
        return frequency_map(lat, rp, grid, args.turns, chunk=len(grid), progress=False)

    fm, results["fma_jacc_first_call_s"] = first_call(ours)
    ref = peer_call(results, "xtrack_fma", xtrack_fma, line, xt, rp, grid, args.turns) if line else None
    row = ["frequency map", f"{len(grid)} x {args.turns} turns"]
    if ref is None:
        results["fma_jacc_s"] = first_call(ours)[1]
        results["fma_ratio_vs_xtrack"] = None
        return row + [results["fma_jacc_s"], "failed", "-", "-"]
    ok = fm.alive & np.isfinite(ref).all(1)
    # near resonances and with strong coupling the two NAFFs (Hann window here, nafflib's
    # own window) may pick different lines: the median and the share within 1e-3 are reported
    d = np.abs(np.r_[fm.qx[ok] - ref[ok, 0], fm.qy[ok] - ref[ok, 1]])
    dq = float(np.median(d)) if d.size else None
    results["fma_share_within_1e-3"] = float(np.mean(d < 1e-3)) if d.size else None
    tj, tx, ratio = paired_times(ours, lambda: xtrack_fma(line, xt, rp, grid, args.turns), rounds=args.rounds,
                                 min_time=0.0)
    results.update(fma_jacc_s=tj, fma_xtrack_s=tx, fma_ratio_vs_xtrack=ratio, fma_median_tune_diff=dq,
                   fma_particles=len(grid), fma_turns=args.turns)
    return row + [tj, tx, ratio, f"median |dQ| {dq:.1e}"]


def run_da(results, lat, rp, line, xt, args):
    radii = np.linspace(args.da_max / args.radii, args.da_max, args.radii)
    angles = np.linspace(0.05, np.pi / 2 - 0.05, args.angles)

    def ours():
        return dynamic_aperture(lat, rp, radii, angles, args.da_turns, progress=False)

    da, results["da_jacc_first_call_s"] = first_call(ours)
    ref = peer_call(results, "xtrack_da", xtrack_da_steps, line, xt, rp, radii, angles, args.da_turns) if line else None
    row = ["dynamic aperture", f"{len(radii)} x {len(angles)} x {args.da_turns} turns"]
    results.update(da_steps_jacc=da.steps[0].tolist(), da_grid_step_m=float(radii[1] - radii[0]))
    if ref is None:
        results.update(da_ratio_vs_xtrack=None, da_grid_steps_diff=None)
        return row + [first_call(ours)[1], "failed", "-", "-"]
    diff = int(np.max(np.abs(da.steps[0] - ref)))
    tj, tx, ratio = paired_times(ours, lambda: xtrack_da_steps(line, xt, rp, radii, angles, args.da_turns),
                                 rounds=args.rounds, min_time=0.0)
    results.update(da_jacc_s=tj, da_xtrack_s=tx, da_ratio_vs_xtrack=ratio, da_grid_steps_diff=diff,
                   da_steps_xtrack=ref.tolist())
    return row + [tj, tx, ratio, f"{diff} steps"]


def setup(args, results):
    lat, rp, madx, seq = load_madx(args.lattice)
    line, xt = None, None
    try:
        import xtrack as xt

        line = peer_call(results, "xtrack_line", xtrack_line, madx, seq, rp)
    except ImportError as err:
        results["xtrack_line"] = f"failed: {err}"
    for item in args.knob:
        name, value = item.split("=")
        lat.set_knob(name, float(value))
        if line is not None:
            line.vars[name] = float(value)
    if line is not None:
        line = peer_call(results, "xtrack_line", lambda: (line.build_tracker(), line)[1])
    return lat, rp, line, xt, seq


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lattice", default=str(DEFAULT_FODO), help="MAD-X file (default: the FODO ring)")
    ap.add_argument("--json", default=None, help="write results to this JSON file")
    ap.add_argument("--knob", action="append", default=None, help="NAME=VALUE set on both sides (repeatable)")
    ap.add_argument("--particles", type=int, default=10_000)
    ap.add_argument("--turns", type=int, default=1024)
    ap.add_argument("--fma-amp", type=float, default=0.02, help="largest FMA amplitude [m]")
    ap.add_argument("--radii", type=int, default=20)
    ap.add_argument("--angles", type=int, default=5)
    ap.add_argument("--da-max", type=float, default=0.06, help="largest DA radius [m]")
    ap.add_argument("--da-turns", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = ap.parse_args(argv)
    if args.knob is None:
        args.knob = list(DEFAULT_KNOBS) if args.lattice == str(DEFAULT_FODO) else []
    if args.quick:
        args.particles, args.turns, args.da_turns, args.rounds = 100, 256, 200, 3
    results = {"machine": machine(), "lattice": args.lattice, "knobs": args.knob}
    lat, rp, line, xt, seq = setup(args, results)
    rows = [run_fma(results, lat, rp, line, xt, args), run_da(results, lat, rp, line, xt, args)]
    print_table(f"Nonlinear scans on {seq} (one thread each; ratio = xtrack time / JACC time, median of "
                f"{args.rounds} alternating rounds)",
                ["scan", "size", "JACC [s]", "xtrack [s]", "ratio", "agreement"], rows)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
