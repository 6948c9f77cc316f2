"""Tracking throughput, compile time and reverse-mode cost: JACC against xtrack (and Cheetah).

    python benchmarks/tracking.py --lattice ring.madx --json results/tracking.json

Both codes track the same particles through the same MAD-X sequence with their default
models (JACC preset ``Xsuite()``, xtrack defaults), on one CPU thread each for the headline
ratio; the coordinate agreement is reported beside each ratio. Elements are counted as the
lattice describes them (placements of the imported sequence, drifts included).
"""

from __future__ import annotations

import argparse
import sys

from common import (DEFAULT_FODO, best_time, cold_compilation, load_madx, machine, paired_times, peer_call,
                    print_table, single_thread_jax, write_json, xtrack_line)

single_thread_jax()
cold_compilation()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jacc  # noqa: E402


def particles(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)) * np.array([1e-3, 1e-4, 1e-3, 1e-4, 1e-3, 1e-4])


CONFIGS = {
    # name: (JACC preset, xtrack bend core model)
    "default models": (lambda: jacc.Xsuite(), None),
    "exact bends": (lambda: jacc.XsuiteExactBend(), "bend-kick-bend"),
}


def jacc_tracker(lat, rp, model=None):
    engine = jacc.TrackingEngine(lat, rp, model=model)
    spec, _, dyn = engine.make_model()
    f = jax.jit(engine.make_tracking_func(spec, record=None), static_argnums=2)
    return f, dyn, spec


def xtrack_track(line, x, rp, n_turns):
    import xtrack as xt

    from jacc.particles import madx_to_xsuite

    def run():
        p = xt.Particles(mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c,
                         **dict(zip(("x", "px", "y", "py", "zeta", "delta"),
                                    madx_to_xsuite(x, rp).T)))
        line.track(p, num_turns=n_turns)
        return p

    return run


def xsuite_to_madx_particles(p, rp):
    from jacc.particles import xsuite_to_madx

    p.sort(interleave_lost_particles=True)
    return xsuite_to_madx(np.stack([p.x, p.px, p.y, p.py, p.zeta, p.delta], axis=1), rp)


def turns_for(n: int, n_turns: int) -> int:
    """Turns tracked at ``n`` particles: ``n_turns``, fewer above 1e4 particles so that each
    size takes about as long (the rate per particle and element is what is compared)."""
    return max(1, min(n_turns, (10000 * n_turns) // n))


def built_line(madx, seq, rp, core=None):
    """The xtrack line of the sequence, its bend core model set, tracker built."""
    line = xtrack_line(madx, seq, rp)
    if core is not None:
        line.configure_bend_model(core=core)
    line.build_tracker()
    return line


def cheetah_probe(lat, rp, results):
    """Cheetah's runner factory, or None with the reason in ``results["cheetah"]`` when
    Cheetah is missing or cannot express the lattice."""
    try:
        from cheetah_peer import cheetah_runner

        cheetah_runner(lat, rp, particles(2), 1)
    except (ImportError, NotImplementedError) as err:
        results["cheetah"] = f"not applicable: {err}"
        return None
    return cheetah_runner


def throughput(lat, rp, madx, seq, sizes, turns, results, config="default models"):
    n_el = len(lat)
    preset, core = CONFIGS[config]
    f, dyn, spec = jacc_tracker(lat, rp, preset())
    # peers that raise are recorded under these keys and left out of the rows that follow
    xt_key = f"xtrack_status_{config.replace(' ', '_')}"
    line = peer_call(results, xt_key, built_line, madx, seq, rp, core)
    cheetah_runner = peer_call(results, "cheetah", cheetah_probe, lat, rp, results)
    cheetah_ok = cheetah_runner is not None
    rows = []
    for n in sizes:
        n_turns = turns_for(n, turns)
        x = particles(n)
        xj = jnp.asarray(x)
        out = f(dyn, xj, n_turns)
        jax.block_until_ready(out)

        def run_jacc():
            return jax.block_until_ready(f(dyn, xj, n_turns))

        entry = {"n_particles": n, "n_turns": n_turns}
        timed = None
        if line is not None:
            run = xtrack_track(line, x, rp, n_turns)
            p = peer_call(results, xt_key, run)
            if p is not None:
                entry["max_abs_diff"] = float(np.max(np.abs(np.asarray(out.x) - xsuite_to_madx_particles(p, rp))))
                # JACC and xtrack timed in alternation: the ratio is the median over the rounds
                timed = peer_call(results, xt_key, paired_times, run_jacc, run, rounds=3)
        if timed is not None:
            tj, tx, ratio = timed
            entry.update({"xtrack_particle_element_per_s": n * n_turns * n_el / tx, "ratio": ratio})
        else:
            tj = best_time(run_jacc, repeat=3)
            entry["ratio"] = results[xt_key]
        entry["jacc_particle_element_per_s"] = n * n_turns * n_el / tj
        row = [n, n_turns, entry["jacc_particle_element_per_s"], entry.get("xtrack_particle_element_per_s", "-"),
               entry["ratio"] if timed is not None else "failed", entry.get("max_abs_diff", "-")]
        if cheetah_ok and n <= 10000:
            runc = cheetah_runner(lat, rp, x, n_turns)
            xc = peer_call(results, "cheetah", runc)
            if xc is not None:
                tc = best_time(runc, repeat=2)
                dc = float(np.max(np.abs(np.asarray(out.x)[:, :4] - xc[:, :4])))
                entry.update({"cheetah_particle_element_per_s": n * n_turns * n_el / tc,
                              "ratio_vs_cheetah": tc / tj, "cheetah_max_abs_diff_transverse": dc})
                row += [tc / tj, dc]
            else:
                row += ["failed", "-"]
        elif cheetah_ok:
            row += ["-", "-"]
        rows.append(row)
        results.setdefault(f"throughput_{config.replace(' ', '_')}", []).append(entry)
    header = ["particles", "turns", "JACC [part*elem/s]", "xtrack [part*elem/s]", "ratio vs xtrack (median)",
              "max |JACC-xtrack|"]
    if cheetah_ok:
        header += ["ratio vs Cheetah", "max |JACC-Cheetah| (x..py)"]
    print_table(f"Tracking {seq} ({n_el} elements, one thread, {config}: "
                f"JACC {type(preset()).__name__}(), xtrack bend core {core or 'default'})", header, rows)
    if not cheetah_ok:
        print(f"Cheetah: {results.get('cheetah')}")
    at_1e4 = [r for r in results[f"throughput_{config.replace(' ', '_')}"] if r["n_particles"] == 10000]
    if at_1e4 and config == "default models":
        results["throughput_ratio_vs_xtrack"] = at_1e4[0]["ratio"]
    elif at_1e4:
        results["throughput_ratio_vs_xtrack_exact_bends"] = at_1e4[0]["ratio"]


def compile_times(lat, rp, results):
    import time

    def timed(lattice):
        f, dyn, _ = jacc_tracker(lattice, rp)
        x = jnp.asarray(particles(16))
        t0 = time.perf_counter()
        f.lower(dyn, x, 1).compile()
        return time.perf_counter() - t0

    results["compile_time_s"] = timed(lat)
    rows = [[lat.name, len(lat), results["compile_time_s"]]]
    for n_cells in (40, 400):
        cell = [jacc.Quadrupole(name="qf", l=0.5, k1=0.48), jacc.Drift(name="d1", l=0.4),
                jacc.SBend(name="mb", l=3.6, angle=2 * np.pi / (2 * n_cells)),
                jacc.Drift(name="d2", l=0.4), jacc.Sextupole(name="sf", l=0.2, k2=0.3),
                jacc.Drift(name="d3", l=0.55), jacc.Quadrupole(name="qd", l=0.5, k1=-0.48),
                jacc.Drift(name="d1", l=0.4), jacc.SBend(name="mb", l=3.6, angle=2 * np.pi / (2 * n_cells)),
                jacc.Drift(name="d2", l=0.4), jacc.Sextupole(name="sd", l=0.2, k2=-0.5),
                jacc.Drift(name="d3", l=0.55)]
        big = jacc.Lattice.from_line(jacc.Line("ring", [jacc.Line("cell", cell)], repeat=n_cells))
        t = timed(big)
        rows.append([f"synthetic {n_cells} cells", len(big), t])
        results[f"compile_time_{len(big)}_elements_s"] = t
    results["compile_growth_480_to_4800"] = rows[2][2] / rows[1][2]
    print_table("Compile time (one pass, jit, after tracing)", ["lattice", "elements", "compile [s]"], rows)


def reverse_mode(lat, rp, results, n=1000, n_turns=100, model=None, reverse="checkpoint", label=""):
    lat = lat.copy()
    if reverse == "reversible":
        # the reversible path tracks without apertures (losses are not invertible)
        for d in lat.definitions.values():
            if d.aperture is not None:
                d.aperture = None
    quads = [d for d, e in lat.definitions.items() if e.element_name == "Quadrupole"]
    for d in quads:
        lat[d].diff_params = ["k1"]
    engine = jacc.TrackingEngine(lat, rp, model=model)
    spec, _, dyn = engine.make_model()
    f = engine.make_tracking_func(spec, record=None, reverse=reverse)
    x = jnp.asarray(particles(n) * 0.1)

    def loss(d, turns):
        return jnp.sum(f(d, x, turns).x[:, :4] ** 2)

    fwd = jax.jit(loss, static_argnums=1)
    grad = jax.jit(jax.grad(loss), static_argnums=1)
    jax.block_until_ready(fwd(dyn, n_turns))
    jax.block_until_ready(grad(dyn, n_turns))
    tf, tg, ratio = paired_times(lambda: jax.block_until_ready(fwd(dyn, n_turns)),
                                 lambda: jax.block_until_ready(grad(dyn, n_turns)))
    mem = {}
    for turns in (10, 100, 1000):
        ma = jax.jit(jax.grad(loss), static_argnums=1).lower(dyn, turns).compile().memory_analysis()
        mem[turns] = int(getattr(ma, "temp_size_in_bytes", 0)) if ma is not None else -1
    results.update({"forward_time_s": tf, "grad_time_s": tg, "grad_over_forward": ratio,
                    "grad_n_params": len(dyn), "grad_temp_bytes_by_turns": mem})
    print_table(f"Reverse mode {label}, {n} particles, {n_turns} turns, gradient w.r.t. {len(dyn)} quadrupoles",
                ["forward [s]", "gradient [s]", "grad/forward (median of 5 pairs)",
                 "temp MB @10 / 100 / 1000 turns"],
                [[tf, tg, ratio, " / ".join(f"{mem[t] / 2**20:.1f}" for t in (10, 100, 1000))]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lattice", default=str(DEFAULT_FODO), help="MAD-X file (default: the FODO ring)")
    ap.add_argument("--json", default=None, help="write results to this JSON file")
    ap.add_argument("--sizes", default="100,1000,10000,100000", help="particle counts")
    ap.add_argument("--turns", type=int, default=10, help="turns at up to 1e4 particles (fewer above)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if not args.quick else [100, 1000]
    lat, rp, madx, seq = load_madx(args.lattice)
    results = {"lattice": args.lattice, "n_elements": len(lat), "machine": machine(),
               "models": "JACC Xsuite() preset vs xtrack defaults (from_madx_sequence)"}
    for config in CONFIGS:
        throughput(lat, rp, madx, seq, sizes, 1 if args.quick else args.turns, results, config)
    compile_times(lat, rp, results)
    # the headline (grad_over_forward) is the first: default models, memory independent of
    # the number of turns (reverse="reversible"); per-turn checkpoints for comparison
    for model, rev in ((None, "reversible"), (None, "checkpoint"), (jacc.XsuiteExactBend(), "reversible")):
        sub = {}
        reverse_mode(lat, rp, sub, n=100 if args.quick else 1000, n_turns=10 if args.quick else 100,
                     model=model, reverse=rev,
                     label=f"{type(model or jacc.Xsuite()).__name__}(), reverse='{rev}'")
        if model is None and rev == "reversible":
            results.update(sub)
        results[f"reverse_{type(model or jacc.Xsuite()).__name__}_{rev}"] = sub
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
